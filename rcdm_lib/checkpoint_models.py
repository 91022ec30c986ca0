"""One RCDM per representation (the paper's setting): the official `rcdm_ema_*.pt` files or `.safetensors`
exports of scripts/train.py, each with its encoder, loaded when first used.

At most one UNet is held at a time (a 128px RCDM is 1.7 GB): sampling another representation releases
the one before. Everything that can be told about a wrong file is told before any model is built
(`checkpoint_problems`): the representation size against the encoder's (both named), the release file
name against the key it was given under, and for our exports the encoder identity saved in them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rcdm_lib.representations import (CUSTOM, RELEASED, Representation, describe, describe_beside, describe_custom,
                                      release_file_key)
from rcdm_lib.sampling import sample_from_reps, sample_unconditional
from rcdm_lib.training.config import DiffusionConfig
from rcdm_lib.training.sources import rcdm_view
from rcdm_lib.unet import (OFFICIAL_RCDM_EXPECTED, UNet, UNetConfig, load_official_checkpoint, load_unet,
                           read_unet_config, read_unet_extra)
from rcdm_lib.user_files import read_state_dict


@dataclass
class CheckpointEntry:
    rep: Representation
    checkpoint: Path
    encoder_weights: Path | None   # None for a custom encoder (encoders.custom.<name> says how to build it)
    setting: str = ""              # the key of its checkpoint (default rcdm.checkpoints.<name>)

    def key(self, name: str) -> str:
        return self.setting or f"rcdm.checkpoints.{name}"

    def encoder_key(self) -> str:
        """The setting its encoder comes from."""
        if self.rep.layer == CUSTOM:
            return f"encoders.custom.{self.rep.name}"
        return f"rcdm.beside.{self.rep.name}.encoder" if self.setting else f"encoders.weights.{self.rep.method}"


def checkpoint_rep_dim(path: Path) -> int | None:
    """The representation size a checkpoint is conditioned on, read without building the network."""
    if path.suffix == ".safetensors":
        return read_unet_config(path).rep_dim
    sd = read_state_dict(path, "RCDM checkpoint", OFFICIAL_RCDM_EXPECTED, mmap=True)
    w = sd.get("ssl_emb.weight")
    return None if w is None else int(w.shape[1])


def export_encoder(path: Path) -> dict | None:
    """The encoder identity an export of scripts/train.py saved (name, layer, weights sha256), if any."""
    if path.suffix != ".safetensors":
        return None
    return (read_unet_extra(path, "data") or {}).get("encoder")


def checkpoint_problems(key: str, entry: CheckpointEntry, encoder_dim: int, encoder_sha: str) -> list[str]:
    """Sentences naming what does not fit in rcdm.checkpoints.<key> (see the module docstring)."""
    path, problems, setting = entry.checkpoint, [], entry.key(key)
    released = release_file_key(path)
    if released is not None and released != key and not entry.setting:
        problems.append(f"rcdm.checkpoints.{key} names {path.name}, the release's file for {released}: give it "
                        f"under rcdm.checkpoints.{released}, or give the {key} file here")
    ident = export_encoder(path)
    if ident:
        want = {"name": entry.rep.method, "layer": entry.rep.layer, "weights_sha256": encoder_sha}
        diff = [f"{k} {ident.get(k)!r} (this run's: {v!r})" for k, v in want.items() if ident.get(k) != v]
        if diff:
            problems.append(f"{setting} ({path.name}) was trained on another encoder: "
                            + ", ".join(diff) + f"; train one on {entry.encoder_key()} with "
                            f"`scripts/train.py --encoder {entry.rep.method}"
                            + ("`" if entry.rep.layer == CUSTOM else f" --layer {entry.rep.layer}`"))
    try:
        dim = checkpoint_rep_dim(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file is named with its key
        return problems + [f"{setting}: {path} cannot be read as an RCDM checkpoint "
                           f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"]
    if dim is None:
        problems.append(f"{setting}: {path} has no ssl_emb.weight, so it is not conditioned on a "
                        "representation; expected an rcdm_ema_*.pt file or an export of scripts/train.py")
    elif dim != encoder_dim:
        problems.append(f"{setting}: {path.name} is conditioned on {dim}-d representations but the "
                        f"{entry.rep.label} of {entry.encoder_key()} gives {encoder_dim}-d ones")
    return problems


class CheckpointModels:
    """The ProfileModels interface (encode, sample, rcdm_view, names) over one RCDM per representation."""

    def __init__(self, settings: dict, entries: dict[str, CheckpointEntry], encoders: dict, device):
        r = settings.get("rcdm") or {}
        self.settings, self.entries, self.encoders = settings, entries, encoders
        self.device = torch.device(device)
        self.image_size = int(r.get("image_size") or (settings.get("data") or {}).get("image_size") or 128)
        self._unet_kw = dict(r.get("unet") or {})
        self._diffusion = DiffusionConfig(**(r.get("diffusion") or {}))
        u = settings.get("unconditional") or {}
        self.unconditional = Path(u["checkpoint"]) if u.get("checkpoint") else None   # an unconditional ADM
        self._unconditional_flags = dict(u.get("flags") or {})
        self._held: tuple[str, UNet, DiffusionConfig] | None = None

    @property
    def slots(self) -> list[str]:
        return list(self.entries)

    def _check(self, name: str | None) -> None:
        if name is None and self.unconditional is None:
            raise ValueError("one RCDM per representation has no null condition; set unconditional.checkpoint to an "
                             "unconditional ADM for unconditional samples")
        if name is not None and name not in self.entries:
            raise ValueError(f"unknown representation {name!r}; this run has {self.slots}")

    def network(self, name: str | None) -> tuple[UNet, DiffusionConfig]:
        """The RCDM of `name`, or for None the unconditional ADM (loaded now, the one held before released)."""
        self._check(name)
        if self._held is None or self._held[0] != name:
            self.release()
            path = self.entries[name].checkpoint if name is not None else self.unconditional
            if name is None:
                from rcdm_lib.unconditional import load_official_unconditional

                model, diff = load_official_unconditional(path, self._unconditional_flags)
                model = model.to(self.device)
            elif path.suffix == ".safetensors":
                model = load_unet(path, device=self.device)
                saved = read_unet_extra(path, "diffusion")
                diff = DiffusionConfig(**saved) if saved else self._diffusion
            else:
                cfg = UNetConfig(**{**self._unet_kw, "image_size": self.image_size,
                                    "rep_dim": checkpoint_rep_dim(path)})
                model, diff = load_official_checkpoint(path, config=cfg).to(self.device), self._diffusion
            self._held = (name, model.eval(), diff)
        return self._held[1], self._held[2]

    def release(self) -> None:
        self._held = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def encode(self, name: str, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Representation of images [N, 3, E, E] in [-1, 1] -> [N, d]."""
        self._check(name)
        return self.encoders[name].embed(images, batch_size)

    def diffusion(self, name: str | None, steps: int | None = 50, sampler: str = "ancestral"):
        _, diff = self.network(name)
        return diff.for_sampling(steps, sampler)

    def sample(self, name: str | None, h: torch.Tensor | None = None, n_per: int = 4, steps: int = 50,
               sampler: str = "ancestral", **kwargs) -> torch.Tensor:
        """RCDM samples [N, n_per, 3, S, S] for representations h [N, d] of `name`; for name None, n=N samples of the
        unconditional ADM, resized to the RCDM resolution S."""
        unet, _ = self.network(name)
        if name is None:
            x = sample_unconditional(unet, self.diffusion(None, steps, sampler), kwargs.pop("n", 1), n_per=n_per,
                                     sampler=sampler, **kwargs)   # [N, n_per, 3, H, H]
            return x if x.shape[-1] == self.image_size else \
                rcdm_view(x.flatten(0, 1), self.image_size).reshape(*x.shape[:3], self.image_size, self.image_size)
        return sample_from_reps(unet, self.diffusion(name, steps, sampler), h.float(), n_per=n_per, sampler=sampler,
                                **kwargs)

    def rcdm_view(self, images: torch.Tensor) -> torch.Tensor:
        """Images at the encoder resolution [N, 3, E, E] in [-1, 1] -> the RCDM resolution."""
        return rcdm_view(images, self.image_size)


def checkpoint_entries(settings: dict) -> tuple[dict[str, CheckpointEntry], dict[str, str]]:
    """({name: entry} for every representation with a checkpoint and an encoder file, {name: why left out})."""
    ckpts = (settings.get("rcdm") or {}).get("checkpoints") or {}
    weights = (settings.get("encoders") or {}).get("weights") or {}
    entries, left_out = {}, {}
    for key in RELEASED:
        rep = describe(key)
        if not ckpts.get(key):
            left_out[key] = f"rcdm.checkpoints.{key} is not set"
        elif not weights.get(rep.method):
            left_out[key] = f"rcdm.checkpoints.{key} is set but encoders.weights.{rep.method} is not"
        else:
            entries[key] = CheckpointEntry(rep, Path(ckpts[key]), Path(weights[rep.method]))
    custom, custom_left = beside_entries(settings)
    return {**entries, **custom}, {**left_out, **custom_left}


def beside_entries(settings: dict) -> tuple[dict[str, CheckpointEntry], dict[str, str]]:
    """The models shown beside the run's own: custom_entries and those of rcdm.beside."""
    entries, left_out = custom_entries(settings)
    weights = (settings.get("encoders") or {}).get("weights") or {}
    tiny_dir = (settings.get("encoders") or {}).get("dir")
    for name, b in ((settings.get("rcdm") or {}).get("beside") or {}).items():
        method = b["encoder"]
        enc = weights.get(method) or (Path(tiny_dir) / f"{method}.safetensors" if tiny_dir else None)
        if not b.get("checkpoint"):
            left_out[name] = f"rcdm.beside.{name}.checkpoint is not set"
        elif enc is None:
            left_out[name] = f"rcdm.beside.{name} needs encoders.weights.{method} or encoders.dir"
        else:
            entries[name] = CheckpointEntry(describe_beside(name, method, b.get("layer") or "backbone"),
                                            Path(b["checkpoint"]), Path(enc), setting=f"rcdm.beside.{name}.checkpoint")
    return entries, left_out


def custom_entries(settings: dict) -> tuple[dict[str, CheckpointEntry], dict[str, str]]:
    """({name: entry} for every encoder of encoders.custom with an RCDM in rcdm.checkpoints, {name: why left out})."""
    ckpts = (settings.get("rcdm") or {}).get("checkpoints") or {}
    entries, left_out = {}, {}
    for name in (settings.get("encoders") or {}).get("custom") or {}:
        if ckpts.get(name):
            entries[name] = CheckpointEntry(describe_custom(name), Path(ckpts[name]), None)
        else:
            left_out[name] = (f"rcdm.checkpoints.{name} is not set: train it with `scripts/train.py --config FILE "
                              f"--encoder {name} --export PATH`")
    return entries, left_out


def entry_encoder(settings: dict, name: str, entry: CheckpointEntry, device):
    """The frozen encoder of an entry: a published or tiny file, or a custom encoder built from its settings."""
    from rcdm_lib.config import repo_path
    from rcdm_lib.encoders import get_encoder

    if entry.rep.layer == CUSTOM:
        from rcdm_lib.encoders.custom import settings_encoder

        return settings_encoder(settings, name, device)
    return get_encoder(entry.rep.method, layer=entry.rep.layer, weights=repo_path(entry.encoder_weights),
                       device=device)


class MixedModels:
    """The slot model's representations and one RCDM per custom representation behind one interface: a user's
    own encoders shown beside the tiny ones. The null condition (unconditional samples) is the slot model's."""

    def __init__(self, slot_models, checkpoints: "CheckpointModels"):
        if slot_models.image_size != checkpoints.image_size:
            raise ValueError(f"the slot model samples {slot_models.image_size}px images but rcdm.image_size is "
                             f"{checkpoints.image_size}")
        self.slot_models, self.checkpoints = slot_models, checkpoints
        self.unet, self.image_size = slot_models.unet, slot_models.image_size
        self.encoders = {**slot_models.encoders, **checkpoints.encoders}

    @property
    def slots(self) -> list[str]:
        return [*self.slot_models.slots, *self.checkpoints.slots]

    def _owner(self, name: str | None):
        return self.checkpoints if name in self.checkpoints.entries else self.slot_models

    def encode(self, name: str, images: torch.Tensor, **kw) -> torch.Tensor:
        return self._owner(name).encode(name, images, **kw)

    def sample(self, name: str | None, h: torch.Tensor | None = None, **kw) -> torch.Tensor:
        return self._owner(name).sample(name, h, **kw)

    def rcdm_view(self, images: torch.Tensor) -> torch.Tensor:
        return self.slot_models.rcdm_view(images)
