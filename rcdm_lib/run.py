"""The run a chapter works on: its representations, its data and its models, from the merged settings.

    from rcdm_lib.run import open_run
    run = open_run(settings, chapter="05_rank_mrr", results_dir=results_dir)
    for rep in run.representations.values():     # rep.method, rep.layer, rep.supervised, rep.label
        h = run.encode(rep.name, images)          # images [N, 3, E, E] in [-1, 1] -> [N, d]
        x = run.sample(rep.name, h, n_per=4)      # [N, 4, 3, S, S] in [-1, 1]
    b = run.data.split("val").batch(range(8))     # images, labels, and factors where the data has them
    run.record("rank_mrr", "dino_backbone/mrr", 0.4, "...")

The same chapter runs on the tiny profile's slot model (one UNet, every representation a slot of
it, the null condition for unconditional samples) and on the paper's setting (one RCDM checkpoint
per representation, loaded when used, one at a time). A representation the settings do not give is
left out with the reason (`run.left_out`, `run.left_out_line()`); an optional baseline that is not
given is None with the key to set.
"""
from __future__ import annotations

from functools import cached_property

import torch

from rcdm_lib import claims
from rcdm_lib.config import as_settings, resolve_device
from rcdm_lib.data.splits import RunData
from rcdm_lib.representations import RELEASED, Representation, describe
from rcdm_lib.settings import SettingsError


class Run:
    def __init__(self, settings: dict, models, representations: dict[str, Representation],
                 left_out: dict[str, str], device, chapter: str | None = None, results_dir=None):
        self.settings, self.models = settings, models
        self.representations = representations
        self.left_out = left_out
        self.device = torch.device(device)
        self.chapter, self.results_dir = chapter, results_dir
        self.data = RunData(settings)
        self._extra_encoders: dict = {}

    # ------------------------------------------------------------------ what the run is
    @property
    def profile(self) -> str:
        return self.settings["profile"]

    @property
    def names(self) -> list[str]:
        return list(self.representations)

    slots = names   # the analyses' word for the representations a model is conditioned on

    @property
    def image_size(self) -> int:
        """The RCDM resolution S."""
        return self.models.image_size

    @property
    def encoder_size(self) -> int:
        """The encoders' input resolution E."""
        return self.data.encoder_size

    @property
    def has_unconditional(self) -> bool:
        """Whether unconditional samples can be drawn (`run.sample(None, n=N)`): the slot model's null condition,
        or the unconditional ADM of `unconditional.checkpoint`."""
        return getattr(self.models, "unet", None) is not None or getattr(self.models, "unconditional", None) is not None

    def select(self, **what) -> list[str]:
        """Names of the representations whose attributes match, e.g. select(layer="backbone", supervised=False)."""
        return [n for n, r in self.representations.items() if all(getattr(r, k) == v for k, v in what.items())]

    def for_verdict(self, values: dict) -> dict:
        """The entries of `values` (keyed by representation) that a verdict on the paper's claims counts: the run's
        own representations, not the models shown beside them (rcdm.beside, encoders.custom)."""
        return {k: v for k, v in values.items() if k not in self.representations or not self.representations[k].beside}

    def supervised_and_ssl_backbones(self) -> tuple[str | None, list[str]]:
        """(the supervised backbone or None, the self-supervised backbones): the paper's usual comparison."""
        sup = self.select(layer="backbone", supervised=True, beside=False)
        return (sup[0] if sup else None), self.select(layer="backbone", supervised=False, beside=False)

    def backbone_projector_pairs(self) -> list[tuple[str, str, str]]:
        """(method, backbone, projector) for every method whose two layers the run has."""
        own = {n: r for n, r in self.representations.items() if not r.beside}
        heads = {r.method: n for n, r in own.items() if r.layer == "head"}
        return [(r.method, n, heads[r.method]) for n, r in own.items() if r.layer == "backbone" and r.method in heads]

    def no_comparison(self, what: str) -> str | None:
        """The line a page prints when `what` compares the SSL backbones with the supervised one and the run lacks
        one side (None when it has both)."""
        sup, ssl = self.supervised_and_ssl_backbones()
        if sup and ssl:
            return None
        lacks = "the supervised backbone" if not sup else "a self-supervised backbone"
        return f"no verdict on {what}: it compares self-supervised backbones with the supervised one, and this run " \
               f"has no {lacks} ({self.left_out_line() or 'the settings give none'})"

    def left_out_line(self) -> str | None:
        """One line saying which representations the settings leave out and why (None when none is)."""
        if not self.left_out:
            return None
        by_reason: dict[str, list[str]] = {}
        for name, why in self.left_out.items():
            by_reason.setdefault(why.replace(name, "<name>"), []).append(name)
        return "left out: " + "; ".join(f"{', '.join(names)} ({why})" for why, names in by_reason.items())

    def describe(self) -> str:
        n = len(self.representations)
        line = (f"profile {self.profile!r}: {n} representation{'s' if n != 1 else ''}, RCDM at "
                f"{self.image_size}px, encoders at {self.encoder_size}px, on {self.data.describe()}")
        return line + (f"\n{self.left_out_line()}" if self.left_out else "")

    # ------------------------------------------------------------------ models
    def encode(self, name: str, images: torch.Tensor, **kw) -> torch.Tensor:
        """Representation `name` of images [N, 3, E, E] in [-1, 1] -> [N, d]; also for a representation whose RCDM
        the settings leave out, when its encoder is given (IC-GAN's SwAV)."""
        if name in self.representations:
            return self.models.encode(name, images, **kw)
        return self.encoder(name).embed(images, **kw)

    def encoder(self, name: str):
        """The frozen encoder of representation `name` (a FrozenEncoder)."""
        enc = getattr(self.models, "encoders", {}).get(name) or self._extra_encoders.get(name)
        if enc is None:
            from rcdm_lib.encoders import get_encoder

            rep = describe(name)
            weights = ((self.settings.get("encoders") or {}).get("weights") or {}).get(rep.method)
            if not weights:
                raise SettingsError([f"representation {name} needs its encoder: set encoders.weights.{rep.method}"])
            enc = self._extra_encoders[name] = get_encoder(rep.method, layer=rep.layer, weights=weights,
                                                           device=self.device)
        return enc

    def sample(self, name: str | None, h: torch.Tensor | None = None, **kw) -> torch.Tensor:
        return self.models.sample(name, h, **kw)

    def rcdm_view(self, images: torch.Tensor) -> torch.Tensor:
        return self.models.rcdm_view(images)

    # ------------------------------------------------------------------ optional baselines
    @cached_property
    def icgan(self):
        """The IC-GAN baseline (ours at tiny, the official generator at imagenet128), or None when not given."""
        ic = self.settings.get("icgan") or {}
        if not (ic.get("export") or ic.get("weights")):
            return None
        from rcdm_lib.icgan import load_profile_icgan

        return load_profile_icgan(self.settings, device=self.device)

    @cached_property
    def superres(self):
        """The upsampler of chapter 13, or None when not given."""
        sr = self.settings.get("superres") or {}
        if not (sr.get("export") or sr.get("checkpoint")):
            return None
        from rcdm_lib.superres import load_profile_superres

        return load_profile_superres(self.settings, device=self.device)

    @property
    def inception_weights(self) -> str | None:
        return (self.settings.get("metrics") or {}).get("inception_weights")

    def missing(self, what: str) -> str | None:
        """The line a page prints when an optional baseline is not given: what is left out and the key to set."""
        keys = {"icgan": "icgan.weights", "superres": "superres.checkpoint",
                "inception_weights": "metrics.inception_weights", "unconditional": "unconditional.checkpoint"}
        if (self.has_unconditional if what == "unconditional" else getattr(self, what) is not None):
            return None
        return f"left out: {what} rows ({keys[what]} is not set)"

    # ------------------------------------------------------------------ the Claims page
    def record(self, claim: str, key: str, value: float, description: str) -> None:
        claims.record(self._results(), self.chapter, claim, key, value, description, profile=self.profile)

    def record_verdict(self, claim: str, verdict, **kw) -> None:
        claims.record_verdict(self._results(), self.chapter, claim, verdict, profile=self.profile, **kw)

    def _results(self):
        if self.chapter is None or self.results_dir is None:
            raise ValueError("open_run(..., chapter=NAME, results_dir=DIR) to record results")
        return self.results_dir


def open_run(settings, device=None, chapter: str | None = None, results_dir=None) -> Run:
    """The run of `settings` (a dict, a settings file written by the pipeline, or a profile name), on `device`
    (default: the settings' device; auto is cuda when there is one).

    Built-in-data profiles with a slot model (`rcdm.export`): that model and the tiny encoders. Otherwise
    one RCDM per representation from `rcdm.checkpoints`, each with `encoders.weights.<method>`; every
    checkpoint is checked against its encoder before any model is built (SettingsError naming the keys).
    """
    settings = as_settings(settings)
    device = resolve_device(settings.get("device", "auto") if device is None else device)
    from rcdm_lib.checkpoint_models import (CheckpointModels, MixedModels, checkpoint_entries, checkpoint_problems,
                                            beside_entries, entry_encoder)

    r = settings.get("rcdm") or {}
    slot_model = r.get("export") and not any(k in RELEASED for k in (r.get("checkpoints") or {}))
    if slot_model:   # the built-in data's slot model, and beside it one RCDM per custom encoder the settings give
        from rcdm_lib.models import load_profile_models

        models = load_profile_models(settings, device=device)
        reps = {name: describe(name) for name in models.slots}
        entries, left_out = beside_entries(settings)
        if not entries:
            return Run(settings, models, reps, left_out, device, chapter, results_dir)
    else:
        entries, left_out = checkpoint_entries(settings)
    if not entries:
        raise SettingsError(["no representation to show: set rcdm.checkpoints.<name> and encoders.weights.<method> "
                             "for at least one (" + "; ".join(left_out.values()) + ")"])
    encoders, problems = {}, []
    for name, e in entries.items():
        try:
            enc = entry_encoder(settings, name, e, device)
        except (ValueError, FileNotFoundError, KeyError) as err:
            problems.append(f"{e.encoder_key()}: {err}")
            continue
        encoders[name] = enc
        problems += checkpoint_problems(name, e, enc.rep_dim, enc.spec.get("weights_sha256"))
    uncond = settings.get("unconditional") or {}
    if uncond.get("checkpoint"):
        from rcdm_lib.unconditional import unconditional_problems

        problems += unconditional_problems(uncond["checkpoint"], uncond.get("flags"))
    if problems:
        raise SettingsError(problems)
    checkpoints = CheckpointModels(settings, entries, encoders, device)
    if slot_model:
        return Run(settings, MixedModels(models, checkpoints), {**reps, **{n: e.rep for n, e in entries.items()}},
                   left_out, device, chapter, results_dir)
    return Run(settings, checkpoints, {n: e.rep for n, e in entries.items()}, left_out, device, chapter, results_dir)
