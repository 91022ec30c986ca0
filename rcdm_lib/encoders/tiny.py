"""Tiny encoders for the built-in data: a small torchvision-style ResNet plus a projector.

The backbone is torchvision's BasicBlock ResNet layout (conv1/bn1/layer1..), narrowed to three
stages of widths (w, 2w, 4w) and without the max-pool, so a 32x32 image keeps enough spatial
detail; rep_dim = 4w. The checkpoint is a safetensors file whose metadata holds the dataclass
config (JSON) and the format tag `rcdm_lib.tiny_encoder`, so a file alone rebuilds the model.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock

from rcdm_lib.fields import at_least, one_of

TINY_FORMAT = "rcdm_lib.tiny_encoder"
METHODS = ("supervised", "simclr", "barlow", "vicreg", "dino", "dino_noise", "dino_vit")   # dino_vit: a ViT, DINO's loss


@dataclass
class TinyEncoderConfig:
    method: str = one_of(*METHODS, default="simclr")
    width: int = at_least(1, 32)
    blocks: tuple[int, ...] = at_least(1, (1, 1, 1))
    stem_stride: int = at_least(1, 1)
    proj_hidden: int = at_least(1, 256)
    proj_out: int = at_least(1, 64)
    proj_layers: int = at_least(1, 2)   # Linear(+BN+act) layers of the projector, last one plain Linear
    proj_act: str = one_of("relu", "gelu", default="relu")   # "gelu": DINO
    proj_bn: bool = True          # BatchNorm in the projector's hidden layers (DINO's own head has none)
    num_classes: int = at_least(1, 12)   # supervised: the head is the classifier
    prototypes: int = at_least(0, 0)     # DINO: weight-normalised last layer (not part of the head output)
    image_size: int = at_least(1, 32)
    arch: str = one_of("resnet", "vit", default="resnet")   # vit: a timm ViT, `width` its embedding size
    patch_size: int = at_least(1, 4)     # vit: patch side in pixels
    depth: int = at_least(1, 4)          # vit: transformer blocks
    heads: int = at_least(1, 4)          # vit: attention heads (dividing width)

    @property
    def rep_dim(self) -> int:
        return self.width if self.arch == "vit" else self.width * 2 ** (len(self.blocks) - 1)

    @classmethod
    def from_dict(cls, d: dict) -> "TinyEncoderConfig":
        d = dict(d)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown tiny encoder settings {sorted(unknown)}; expected some of {sorted(cls.__dataclass_fields__)}")
        if "blocks" in d:
            d["blocks"] = tuple(d["blocks"])
        return cls(**d)


class TinyResNet(nn.Module):
    """[N x 3 x H x W] -> pooled features [N x rep_dim]."""

    def __init__(self, width: int = 32, blocks=(1, 1, 1), stem_stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, stem_stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        inp = width
        for i, nb in enumerate(blocks):
            out = width * 2 ** i
            stride = 1 if i == 0 else 2
            layers = []
            for b in range(nb):
                s = stride if b == 0 else 1
                down = None
                if s != 1 or inp != out:
                    down = nn.Sequential(nn.Conv2d(inp, out, 1, s, bias=False), nn.BatchNorm2d(out))
                layers.append(BasicBlock(inp, out, s, down))
                inp = out
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
        self.n_stages = len(blocks)
        self.rep_dim = inp

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class TinyViT(nn.Module):
    """[N x 3 x H x W] -> the class token after the last norm [N x width]: timm's VisionTransformer (imported only
    for this architecture; `pip install '.[timm]'`), no classifier."""

    def __init__(self, width: int, depth: int, heads: int, patch_size: int, image_size: int):
        super().__init__()
        try:
            from timm.models.vision_transformer import VisionTransformer
        except ImportError:
            raise ImportError("a tiny ViT encoder (arch: vit) needs timm: pip install '.[timm]'") from None
        if width % heads:
            raise ValueError(f"a ViT's width ({width}) must be a multiple of its heads ({heads})")
        if image_size % patch_size:
            raise ValueError(f"a ViT's image_size ({image_size}) must be a multiple of its patch_size ({patch_size})")
        self.vit = VisionTransformer(img_size=image_size, patch_size=patch_size, embed_dim=width, depth=depth,
                                     num_heads=heads, num_classes=0, global_pool="token")
        self.rep_dim = width

    def forward(self, x):
        return self.vit(x)


def mlp(dims: list[int], act: str = "relu", bn: bool = True) -> nn.Sequential:
    """Linear(+BN+act) for every layer but the last, which is a plain Linear."""
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        last = i == len(dims) - 2
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=not (bn and not last)))
        if not last:
            if bn:
                layers.append(nn.BatchNorm1d(dims[i + 1]))
            layers.append(nn.GELU() if act == "gelu" else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class TinyEncoder(nn.Module):
    """Backbone + head. `features(x)` -> [N x rep_dim]; `forward(x)` -> head output.

    Head: the classifier (supervised) or the projector (SSL). DINO adds `prototypes`, a
    weight-normalised Linear used only by the loss, like DINO's `last_layer`.
    """

    def __init__(self, config: TinyEncoderConfig):
        super().__init__()
        self.config = config
        if config.arch == "vit":
            self.backbone = TinyViT(config.width, config.depth, config.heads, config.patch_size, config.image_size)
        else:
            self.backbone = TinyResNet(config.width, config.blocks, config.stem_stride)
        r = self.backbone.rep_dim
        if config.method == "supervised":
            self.head = nn.Linear(r, config.num_classes)
        else:
            dims = [r] + [config.proj_hidden] * (config.proj_layers - 1) + [config.proj_out]
            self.head = mlp(dims, config.proj_act, bn=config.proj_bn)
        self.prototypes = None
        if config.prototypes:
            self.prototypes = nn.utils.parametrizations.weight_norm(nn.Linear(config.proj_out, config.prototypes, bias=False))
            self.prototypes.parametrizations.weight.original0.data.fill_(1.0)

    @property
    def head_dim(self) -> int:
        return self.config.num_classes if self.config.method == "supervised" else self.config.proj_out

    def features(self, x):
        return self.backbone(x)

    def forward(self, x):
        return self.head(self.backbone(x))

    def prototype_logits(self, head_out):
        return self.prototypes(F.normalize(head_out, dim=-1))


def save_tiny_encoder(model: TinyEncoder, path: str | Path, extra: dict | None = None, half: bool = True) -> Path:
    """Weights + config in safetensors metadata; the training-only DINO prototypes are dropped.

    half=True stores floating tensors in fp16 (files stay under 2 MB for the release
    artifacts); loading casts them back to fp32.
    """
    from safetensors.torch import save_file

    sd = {}
    for k, v in model.state_dict().items():
        if k.startswith("prototypes."):
            continue
        v = v.detach().cpu()
        sd[k] = (v.half() if half and v.is_floating_point() else v).contiguous()
    cfg = asdict(model.config)
    cfg["prototypes"] = 0
    meta = {"format": TINY_FORMAT, "version": "1", "config": json.dumps(cfg),
            "storage_dtype": "float16" if half else "float32"}
    if extra:
        meta["extra"] = json.dumps(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")   # a kill leaves the old encoder or the new one, never half
    save_file(sd, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def is_tiny_encoder_file(path: str | Path) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == TINY_FORMAT
    except Exception:
        return False


TINY_EXPECTED = ("a tiny encoder written by scripts/train_encoder.py (safetensors with metadata "
                 f"format={TINY_FORMAT}); train it with `python scripts/train_encoder.py --profile tiny`")


def load_tiny_encoder(path: str | Path) -> TinyEncoder:
    from rcdm_lib.user_files import load_strict, metadata_json, read_safetensors, safetensors_metadata

    what = "tiny encoder file"
    meta = safetensors_metadata(path, what, TINY_EXPECTED, fmt=TINY_FORMAT, require=("config",))
    model = TinyEncoder(TinyEncoderConfig.from_dict(metadata_json(meta, "config", path, what, TINY_EXPECTED)))
    sd = {k: (v.float() if v.is_floating_point() else v)
          for k, v in read_safetensors(path, what, TINY_EXPECTED).items()}
    load_strict(model, sd, path, what, TINY_EXPECTED)
    return model
