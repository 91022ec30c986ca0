"""get_encoder / wrap_encoder: every representation the library conditions on, as one interface.

An encoder is a frozen, eval-mode nn.Module: `enc(images) -> [N x rep_dim]` for images in
[-1, 1] (the official RCDM input convention, x / 127.5 - 1), with `enc.rep_dim`,
`enc.preprocess` (one raw image -> the tensor it expects) and `enc.spec` (a dict identifying
weights and layer, used in cache keys).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from rcdm_lib.artifacts import file_sha256
from rcdm_lib.data.transforms import Preprocess
from rcdm_lib.encoders.formats import PUBLISHED, READERS, FormatError, build_head, load_torch_file
from rcdm_lib.user_files import MissingUserFile, UserFileError, load_strict, require_file
from rcdm_lib.encoders.tiny import METHODS as TINY_METHODS
from rcdm_lib.encoders.tiny import is_tiny_encoder_file, load_tiny_encoder

ENCODER_NAMES = tuple(sorted(set(PUBLISHED) | set(TINY_METHODS)))
LAYERS = ("backbone", "head")
_LAYER_ALIASES = {"backbone": "backbone", "trunk": "backbone", "head": "head", "projector": "head"}
_NAME_ALIASES = {"barlowtwins": "barlow", "barlow_twins": "barlow", "dino+n": "dino_noise", "dinon": "dino_noise"}


class FrozenEncoder(nn.Module):
    """backbone (+ head) frozen in eval mode; `.train()` cannot switch it back to training."""

    def __init__(self, backbone: nn.Module, head: nn.Module | None, rep_dim: int, name: str = "custom",
                 layer: str = "backbone", preprocess: Callable | None = None, spec: dict | None = None):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.rep_dim, self.name, self.layer = int(rep_dim), name, layer
        self.preprocess = preprocess
        self.spec = dict(spec or {"name": name, "layer": layer})
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True):  # frozen: stays in eval mode inside any parent module
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N x 3 x H x W] in [-1, 1] -> [N x rep_dim]; images with NaN or infinite pixels are refused."""
        bad = ~torch.isfinite(x.detach())
        if bad.any():
            n = int(bad.flatten(1).any(1).sum())
            raise ValueError(f"encoder {self.name} ({self.layer}) was given {n} of {x.shape[0]} images with NaN or "
                             f"infinite pixels; expected finite pixels in [-1, 1] (check how the images were made)")
        h = self.backbone(x)
        if h.ndim > 2:
            h = torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1)
        if self.layer == "head":
            h = self.head(h)
        return h

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """[N x 3 x H x W] in [-1, 1], on any device -> [N x rep_dim] float32 on the CPU, in batches on the
        encoder's device."""
        device = next(self.parameters(), torch.empty(0)).device   # a wrapped function has no parameters: cpu
        return torch.cat([self(images[s:s + batch_size].to(device)).float().cpu()
                          for s in range(0, images.shape[0], batch_size)])

    def extra_repr(self) -> str:
        return f"name={self.name!r}, layer={self.layer!r}, rep_dim={self.rep_dim}"


class _Callable(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def wrap_encoder(encoder: Callable | nn.Module, rep_dim: int | None = None, name: str = "custom",
                 preprocess: Callable | None = None, image_size: int = 224) -> FrozenEncoder:
    """Any callable/module mapping images [N x 3 x H x W] in [-1, 1] to [N x D] (or feature maps,
    average-pooled) becomes an encoder. rep_dim is checked (or found) on a dummy batch."""
    module = encoder if isinstance(encoder, nn.Module) else _Callable(encoder)
    if isinstance(encoder, nn.Module):
        module.eval()
    probe = FrozenEncoder(module, None, rep_dim or 0, name=name)
    with torch.no_grad():
        try:
            dev = next(module.parameters()).device
        except StopIteration:
            dev = torch.device("cpu")
        out = probe(torch.zeros(2, 3, image_size, image_size, device=dev))
    if out.ndim != 2:
        raise ValueError(f"encoder {name!r} returned shape {tuple(out.shape)}; expected [N, D] (or [N, C, H, W] feature maps)")
    if rep_dim is not None and out.shape[1] != rep_dim:
        raise ValueError(f"encoder {name!r} returns {out.shape[1]}-d representations but rep_dim={rep_dim} was given")
    probe.rep_dim = int(out.shape[1])
    probe.preprocess = preprocess or Preprocess(image_size)
    return probe


def _resolve_weights(name: str, weights) -> Path:
    if name in PUBLISHED:
        expected = (f"the {name} file ({PUBLISHED[name].filename}), published at {PUBLISHED[name].url}: download it "
                    f"and pass its path (weights=PATH, or encoders.weights.{name} in your --config file)")
    else:
        expected = (f"the tiny {name} encoder: train it with `python scripts/train_encoder.py --profile tiny "
                    f"--method {name}`")
    if weights is None:
        raise MissingUserFile(f"no weights given for encoder {name!r}; expected {expected}")
    return require_file(Path(weights).expanduser(), "encoder weights file", expected)


def get_encoder(name: str, layer: str = "backbone", weights: str | Path | None = None,
                device: str | torch.device = "cpu") -> FrozenEncoder:
    """A frozen encoder by name: supervised, dino, simclr, barlow, vicreg, swav (published
    ResNet-50 files) or a tiny encoder file of this project (supervised, simclr, barlow, vicreg,
    dino, dino_noise; recognised by its safetensors metadata).

    layer: "backbone" (alias "trunk"; pooled features) or "head" (projector output; for
    supervised the classifier logits). weights: the file's path.
    """
    key = _NAME_ALIASES.get(name.lower(), name.lower())
    if key not in ENCODER_NAMES:
        raise ValueError(f"unknown encoder {name!r}; expected one of {list(ENCODER_NAMES)} (or wrap your own with wrap_encoder)")
    if layer not in _LAYER_ALIASES:
        raise ValueError(f"unknown layer {layer!r}; expected 'backbone' (alias 'trunk') or 'head'")
    layer = _LAYER_ALIASES[layer]
    path = _resolve_weights(key, weights)
    spec = {"name": key, "layer": layer, "weights_sha256": file_sha256(path)}

    if str(path).endswith(".safetensors") or is_tiny_encoder_file(path):
        model = load_tiny_encoder(path)
        method = model.config.method
        if method != key:
            raise ValueError(f"{path} holds a tiny '{method}' encoder but encoder {name!r} was asked for; "
                             f"call get_encoder({method!r}, ...) or pass the {key} file")
        rep_dim = model.backbone.rep_dim if layer == "backbone" else model.head_dim
        spec["format"] = "rcdm_lib.tiny_encoder"
        enc = FrozenEncoder(model.backbone, model.head, rep_dim, key, layer,
                            Preprocess(model.config.image_size), spec)
        return enc.to(device)

    if key not in PUBLISHED:
        raise ValueError(f"{path} is not a tiny encoder safetensors file; '{key}' exists only as a tiny encoder "
                         "trained by scripts/train_encoder.py")
    from torchvision.models import resnet50

    obj = load_torch_file(path, f"encoder weights for {key!r}", f"{PUBLISHED[key].description}, published at "
                                                                  f"{PUBLISHED[key].url}")
    try:
        backbone_sd, head_layers = READERS[key](obj)
    except FormatError as e:  # the reader knows the layout, not the file
        raise UserFileError(f"encoder weights for {key!r} {path} {e}") from None
    with torch.device("meta"):  # no random init: every tensor comes from the file (strict)
        backbone = resnet50(weights=None)
    backbone.fc = nn.Identity()
    load_strict(backbone, backbone_sd, path, f"encoder weights for {key!r}",
                f"a ResNet-50 backbone: {PUBLISHED[key].description}", assign=True)
    head = None
    if layer == "head":
        if not head_layers:
            raise ValueError(f"{path} has no head ({PUBLISHED[key].description}); use layer='backbone'")
        head = build_head(head_layers, PUBLISHED[key].activation)
    rep_dim = 2048 if layer == "backbone" else head.out_dim
    spec["format"] = f"published:{key}"
    return FrozenEncoder(backbone, head, rep_dim, key, layer, Preprocess(224), spec).to(device)


def profile_weights(profile: dict, name: str) -> Path | None:
    """Where a profile (a dict from rcdm_lib.config.load_settings) keeps encoder `name`'s weights:
    `encoders.weights.<name>` (published files, imagenet128) or `<encoders.dir>/<name>.safetensors`
    (tiny encoders). None when the profile names none."""
    from rcdm_lib.config import REPO_ROOT

    ecfg = profile.get("encoders") or {}
    explicit = (ecfg.get("weights") or {}).get(name)
    if explicit:
        return Path(explicit).expanduser()
    if ecfg.get("dir"):
        d = Path(ecfg["dir"])
        d = d if d.is_absolute() else REPO_ROOT / d
        return d / f"{name}.safetensors"
    return None
