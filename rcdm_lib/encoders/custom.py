"""A user's own encoder, named in the settings (`encoders.custom.<name>`): any module, or a timm model.

    encoders:
      custom:
        my_encoder: {factory: "package.module:function", kwargs: {...}, weights: F, input_size: 224}
        my_vit:     {timm: vit_small_patch16_224, kwargs: {...}, weights: F, input_size: 224, output: cls}

`factory` is imported from the Python path with the settings file's folder first on it, and called with `kwargs`;
it must return a `torch.nn.Module`. `timm` names a model that `timm.create_model(name, pretrained=False, **kwargs)`
builds (timm is imported only here, only then). `weights` is a state dict (.safetensors, .pt, .pth; read with
`weights_only=True`, an optional `prefix` such as `module.` stripped), loaded strictly; `weights: none` says, in so
many words, that random weights (seed 0) are meant. Nothing is downloaded.

The encoder takes images [N, 3, H, W] in [-1, 1], resizes them to `input_size` when they differ, normalises them
(timm: the model's own `pretrained_cfg` mean and std; a `mean`/`std` key for either kind; a factory module without
them gets [-1, 1] as is) and returns [N, d]: a timm model's `output` is `cls` (the class token), `mean` (the mean
of the patch tokens) or `pooled` (timm's own head input, the default). Every failure is one sentence naming the
key: a factory that cannot be imported or returns no module, weights that do not fit (the first missing and
unexpected keys), an output of the wrong rank, timm used but not installed.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from rcdm_lib.fields import above, at_least, between, one_of

NO_WEIGHTS = "none"   # `weights: none`: random weights, said explicitly
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")


@dataclass
class CustomEncoderSpec:
    """One entry of `encoders.custom`: how to build, load and read the encoder."""

    factory: str | None = None                   # "package.module:function", called with kwargs
    timm: str | None = None                      # a timm model name, built with timm.create_model(name, **kwargs)
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = field(default=None, metadata={"path": "file", "word": NO_WEIGHTS})
    prefix: str | None = None                    # stripped from the start of every key of the weights
    input_size: int = at_least(1, 224)
    output: str | None = one_of("cls", "mean", "pooled", default=None)   # timm models (default: pooled)
    mean: list[float] | None = between(0.0, 1.0, None)   # per-channel, on images in [0, 1]
    std: list[float] | None = above(0.0, None)


class UserEncoderError(ValueError):
    """A custom encoder cannot be built or used; one sentence naming its settings key."""


class CustomEncoder(nn.Module):
    """[N, 3, H, W] in [-1, 1] -> resized to input_size, normalised, the module, the output picked -> [N, d]."""

    def __init__(self, module: nn.Module, key: str, input_size: int, mean=None, std=None,
                 read=None):
        super().__init__()
        self.module, self.key, self.input_size = module, key, int(input_size)
        self.read = read or (lambda m, x: m(x))
        if mean is not None:
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        else:
            self.mean = self.std = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.input_size)
        if self.mean is not None:
            x = ((x + 1) / 2 - self.mean) / self.std
        out = self.read(self.module, x)
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise UserEncoderError(f"{self.key} returned {shape} for images {list(x.shape)}; expected [N, d], one "
                                   "vector per image (set output: cls, mean or pooled for a timm model, or return "
                                   "a vector from the factory's module)")
        return out


@contextlib.contextmanager
def _path_first(folder: Path | None):
    if folder is None:
        yield
        return
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


def _factory_module(spec: CustomEncoderSpec, key: str, base_dir: Path | None) -> nn.Module:
    mod_name, _, fn_name = spec.factory.partition(":")
    if not mod_name or not fn_name:
        raise UserEncoderError(f"{key}.factory is {spec.factory!r}; expected 'package.module:function'")
    with _path_first(base_dir):
        try:
            module = importlib.import_module(mod_name)
        except Exception as e:  # noqa: BLE001 - a missing module, or one that fails on import: one sentence
            where = f" with {base_dir} first" if base_dir else ""
            raise UserEncoderError(f"{key}.factory {spec.factory!r} cannot be imported ({type(e).__name__}: {e}); "
                                   f"its module is looked up on the Python path{where}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise UserEncoderError(f"{key}.factory {spec.factory!r}: {mod_name} has no function {fn_name!r}")
    made = fn(**spec.kwargs)
    if not isinstance(made, nn.Module):
        raise UserEncoderError(f"{key}.factory {spec.factory!r} returned a {type(made).__name__}, not a "
                               "torch.nn.Module")
    return made


def _timm_model(spec: CustomEncoderSpec, key: str) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise UserEncoderError(f"{key}.timm names a timm model but timm is not installed: pip install '.[timm]' "
                               "in this repository (or pip install timm)") from None
    try:
        return timm.create_model(spec.timm, pretrained=False, **spec.kwargs)
    except Exception as e:  # noqa: BLE001 - an unknown name or a keyword the model does not take
        raise UserEncoderError(f"{key}.timm {spec.timm!r} cannot be built with kwargs {spec.kwargs} "
                               f"({type(e).__name__}: {e})") from None


def _timm_reader(output: str):
    def read(m, x):
        feats = m.forward_features(x)
        if output == "pooled":
            return m.forward_head(feats, pre_logits=True)
        if feats.ndim != 3:
            raise UserEncoderError(f"output: {output} needs a model with tokens; this one gives features of shape "
                                   f"{list(feats.shape)}: use output: pooled")
        n_prefix = getattr(m, "num_prefix_tokens", 1)
        return feats[:, 0] if output == "cls" else feats[:, n_prefix:].mean(1)
    return read


def _weights(spec: CustomEncoderSpec, key: str) -> dict[str, torch.Tensor]:
    from rcdm_lib.user_files import UserFileError, as_state_dict, read_safetensors, read_state_dict

    what = f"{key}.weights"
    expected = "a state dict of the encoder's weights in .safetensors, .pt or .pth"
    path = Path(spec.weights)
    if path.suffix == ".safetensors":
        sd = as_state_dict(read_safetensors(path, what, expected), path, what, expected, prefix="")
    elif path.suffix in (".pt", ".pth"):
        sd = read_state_dict(path, what, expected, wrappers=("state_dict", "model"), prefix="")
    else:
        raise UserFileError(f"{what} {path} has the suffix {path.suffix!r}; expected {expected}")
    if spec.prefix:
        sd = {k.removeprefix(spec.prefix): v for k, v in sd.items()}
    return sd


def weights_identity(spec: CustomEncoderSpec) -> str:
    """What an export records of the weights: the file's sha256, or `none (random, seed 0)`."""
    if spec.weights == NO_WEIGHTS:
        return "none (random, seed 0)"
    from rcdm_lib.artifacts import file_sha256

    return file_sha256(spec.weights)


def settings_encoder(settings: dict, name: str, device="cpu"):
    """The encoder `encoders.custom.<name>` of a run's settings, its factory looked up from the settings file's
    folder first."""
    base = Path(settings["overlay"]).parent if settings.get("overlay") else None
    return load_custom_encoder(name, settings["encoders"]["custom"][name], base_dir=base, device=device)


def load_custom_encoder(name: str, values: dict, base_dir: Path | None = None, device="cpu"):
    """The frozen encoder `encoders.custom.<name>` describes (a FrozenEncoder: rep_dim, spec, embed)."""
    from rcdm_lib.encoders.registry import FrozenEncoder
    from rcdm_lib.settings import SettingsError, check_dataclass_values
    from rcdm_lib.user_files import load_strict

    key = f"encoders.custom.{name}"
    try:
        check_dataclass_values(CustomEncoderSpec, values, key)
    except SettingsError as e:
        raise UserEncoderError(str(e)) from None
    spec = CustomEncoderSpec(**values)
    if bool(spec.factory) == bool(spec.timm):
        raise UserEncoderError(f"{key} needs exactly one of factory ('package.module:function') and timm (a model "
                               f"name); it has {'both' if spec.factory else 'neither'}")
    if spec.weights is None:
        raise UserEncoderError(f"{key}.weights is not set: give the file of its weights (a state dict in "
                               f".safetensors, .pt or .pth), or `weights: {NO_WEIGHTS}` for random weights; nothing "
                               "is downloaded")
    if (spec.mean is None) != (spec.std is None) or any(v is not None and len(v) != 3 for v in (spec.mean, spec.std)):
        raise UserEncoderError(f"{key}: mean and std go together, three numbers each (on images in [0, 1])")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)   # `weights: none` gives the same random encoder every time
        module = _timm_model(spec, key) if spec.timm else _factory_module(spec, key, base_dir)
    if spec.weights != NO_WEIGHTS:
        load_strict(module, _weights(spec, key), spec.weights, f"{key}.weights",
                    f"the weights of the module {key} builds (set prefix: to strip a leading name such as module.)")
    mean, std = spec.mean, spec.std
    read = None
    if spec.timm:
        cfg = getattr(module, "pretrained_cfg", None) or {}
        if mean is None and cfg.get("mean") is not None:
            mean, std = list(cfg["mean"]), list(cfg["std"])
        read = _timm_reader(spec.output or "pooled")
    elif spec.output is not None:
        raise UserEncoderError(f"{key}.output is for timm models; a factory's module returns the vector itself")
    wrapped = CustomEncoder(module.eval(), key, spec.input_size, mean, std, read)
    with torch.no_grad():
        probe = wrapped(torch.zeros(2, 3, spec.input_size, spec.input_size))
    identity = {"name": name, "layer": "custom", "weights_sha256": weights_identity(spec), "d": int(probe.shape[1]),
                "source": spec.timm and f"timm:{spec.timm}" or spec.factory,
                "kwargs_sha256": hashlib.sha256(repr(sorted(spec.kwargs.items())).encode()).hexdigest()[:16]}
    enc = FrozenEncoder(wrapped, None, probe.shape[1], name, "custom", None, identity)
    return enc.to(device)
