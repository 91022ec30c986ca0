"""The published checkpoint formats of the paper's encoders, read into torchvision ResNet-50s.

Each reader takes the object that `torch.load(path, weights_only=True)` returns and gives
(backbone_state, head_layers): torchvision resnet50 keys without `fc` (supervised keeps `fc`
as its head), and the head as an ordered list of layers parsed from the checkpoint's own
shapes (so any width is read exactly; activations sit between layers, as in every layout).
Layouts (DESIGN.md; facebookresearch/RCDM guided_diffusion/get_ssl_models.py):

supervised  torchvision state dict; head = fc (1000 logits).
dino        dict["teacher"], prefixes `module.` + `backbone.`; head `head.mlp.*`
            (Linear-BN-GELU-Linear, 2048-4096-256); `head.last_layer.*` (60000 prototypes,
            weight-normalised) is not part of the representation and is ignored.
simclr      VISSL: ["classy_state_dict"]["base_model"]["model"]["trunk"] with prefix
            `_feature_blocks.`; heads `0.clf.0` Linear 2048-2048, ReLU, `1.clf.0` Linear 2048-128.
barlow      VISSL, same trunk; heads `{0,1,2}.clf.{0,1}`: Linear(no bias)-BN-ReLU x2, Linear.
vicreg      dict["model"], prefixes `module.` + `backbone.`; `projector.*`
            (Linear-BN-ReLU x2, Linear without bias), 2048-8192-8192-8192.
swav        state dict, prefix `module.`; `projection_head.*` Linear-BN-ReLU-Linear 2048-2048-128;
            `prototypes.*` ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn


@dataclass(frozen=True)
class PublishedFormat:
    name: str
    filename: str
    url: str          # where the file is published
    description: str  # what the reader expects, for error messages
    activation: str = "relu"


PUBLISHED = {
    "supervised": PublishedFormat(
        "supervised", "resnet50-0676ba61.pth", "https://download.pytorch.org/models/resnet50-0676ba61.pth "
        "(torchvision ResNet50_Weights.IMAGENET1K_V1, https://pytorch.org/vision/stable/models/resnet.html)",
        "a torchvision ResNet-50 state dict (keys conv1.weight, layer1.0.conv1.weight, ..., fc.weight)"),
    "dino": PublishedFormat(
        "dino", "dino_resnet50_pretrain_full_checkpoint.pth",
        "https://dl.fbaipublicfiles.com/dino/dino_resnet50_pretrain/dino_resnet50_pretrain_full_checkpoint.pth "
        "(https://github.com/facebookresearch/dino)",
        "DINO's full checkpoint: a dict with key 'teacher' holding module.backbone.* and module.head.mlp.* keys",
        activation="gelu"),
    "simclr": PublishedFormat(
        "simclr", "model_final_checkpoint_phase999.torch",
        "https://dl.fbaipublicfiles.com/vissl/model_zoo/simclr_rn50_1000ep_simclr_8node_resnet_16_07_20.afe428c7/"
        "model_final_checkpoint_phase999.torch (VISSL model zoo, https://github.com/facebookresearch/vissl/blob/main/MODEL_ZOO.md)",
        "a VISSL checkpoint: classy_state_dict/base_model/model/{trunk,heads}, trunk keys prefixed _feature_blocks."),
    "barlow": PublishedFormat(
        "barlow", "barlow_twins_32gpus_4node_imagenet1k_1000ep_resnet50.torch",
        "https://dl.fbaipublicfiles.com/vissl/model_zoo/barlow_twins/barlow_twins_32gpus_4node_imagenet1k_1000ep_resnet50.torch "
        "(VISSL model zoo, https://github.com/facebookresearch/vissl/blob/main/MODEL_ZOO.md)",
        "a VISSL checkpoint: classy_state_dict/base_model/model/{trunk,heads}, trunk keys prefixed _feature_blocks."),
    "vicreg": PublishedFormat(
        "vicreg", "resnet50_fullckpt.pth", "https://dl.fbaipublicfiles.com/vicreg/resnet50_fullckpt.pth "
        "(https://github.com/facebookresearch/vicreg)",
        "VICReg's full checkpoint: a dict with key 'model' holding module.backbone.* and module.projector.* keys"),
    "swav": PublishedFormat(
        "swav", "swav_800ep_pretrain.pth.tar", "https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar "
        "(https://github.com/facebookresearch/swav)",
        "SwAV's checkpoint: a state dict with module.conv1.weight, ..., module.projection_head.* keys"),
}

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


class FormatError(ValueError):
    pass


def load_torch_file(path: str | Path, what: str = "encoder weights",
                    expected: str = "a .pth/.torch file holding tensors only"):
    """torch.load with weights_only=True, through the one guarded loader (rcdm_lib.user_files)."""
    from rcdm_lib.user_files import read_torch

    return read_torch(path, what, expected)


def _strip(sd: dict, prefix: str) -> dict:
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()}


def _select(sd: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _describe(obj) -> str:
    if isinstance(obj, dict):
        keys = list(obj)[:6]
        return f"a dict with keys {keys}{' ...' if len(obj) > 6 else ''}"
    return f"an object of type {type(obj).__name__}"


def _fail(fmt: PublishedFormat, obj, why: str = "") -> FormatError:
    return FormatError(
        f"is not a {fmt.name} checkpoint in its published format{' (' + why + ')' if why else ''}: it holds "
        f"{_describe(obj)}; expected {fmt.description} (file {fmt.filename}, published at {fmt.url}), or the "
        "encoder name that matches the file")


def _check_backbone(fmt, obj, sd: dict) -> dict:
    sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    if "conv1.weight" not in sd or "layer4.0.conv1.weight" not in sd:
        raise _fail(fmt, obj, "no ResNet-50 backbone keys (conv1.weight, layer4.0.conv1.weight) after removing its prefixes")
    return sd


def parse_layers(sd: dict, fmt, obj) -> list[tuple[str, dict]]:
    """Group `{"<i>[.<j>].<param>": tensor}` into ordered (kind, params) layers (linear | bn)."""
    groups: dict[tuple, dict] = {}
    for k, v in sd.items():
        parts = k.split(".")
        if not all(p.isdigit() for p in parts[:-1]) or len(parts) < 2:
            raise _fail(fmt, obj, f"unexpected head key {k!r}")
        groups.setdefault(tuple(int(p) for p in parts[:-1]), {})[parts[-1]] = v
    layers = []
    for key in sorted(groups):
        p = groups[key]
        if "running_mean" in p:
            layers.append(("bn", p))
        elif "weight" in p and p["weight"].ndim == 2:
            layers.append(("linear", p))
        else:
            raise _fail(fmt, obj, f"head layer {'.'.join(map(str, key))} is neither Linear nor BatchNorm")
    if not layers or layers[0][0] != "linear":
        raise _fail(fmt, obj, "the head does not start with a Linear layer")
    return layers


def _plain_state_dict(fmt: PublishedFormat, obj) -> dict:
    """A torchvision-style file: a state dict, possibly under "state_dict", keys maybe prefixed "module."."""
    if isinstance(obj, dict) and "state_dict" in obj and not _is_state_dict(obj):
        obj = obj["state_dict"]
    if not _is_state_dict(obj):
        raise _fail(fmt, obj)
    return _strip(obj, "module.")


def read_supervised(obj):
    fmt = PUBLISHED["supervised"]
    sd = _plain_state_dict(fmt, obj)
    head = []
    if "fc.weight" in sd:
        head = [("linear", {"weight": sd["fc.weight"], **({"bias": sd["fc.bias"]} if "fc.bias" in sd else {})})]
    return _check_backbone(fmt, obj, sd), head


def read_dino(obj):
    fmt = PUBLISHED["dino"]
    if not isinstance(obj, dict) or "teacher" not in obj:
        raise _fail(fmt, obj, "no 'teacher' entry")
    sd = obj["teacher"]
    if isinstance(sd, dict) and "state_dict" in sd and not _is_state_dict(sd):
        sd = sd["state_dict"]
    sd = _strip(sd, "module.")
    backbone = _check_backbone(fmt, obj, _select(sd, "backbone."))
    head = parse_layers(_select(sd, "head.mlp."), fmt, obj)
    return backbone, head


def _vissl_model(fmt, obj):
    try:
        model = obj["classy_state_dict"]["base_model"]["model"]
        return model["trunk"], model.get("heads", {})
    except (KeyError, TypeError):
        raise _fail(fmt, obj, "no classy_state_dict/base_model/model/trunk entry") from None


def read_vissl(obj, name: str):
    fmt = PUBLISHED[name]
    trunk, heads = _vissl_model(fmt, obj)
    backbone = _check_backbone(fmt, obj, _strip(trunk, "_feature_blocks."))
    heads = {re.sub(r"(^|\.)clf\.", r"\1", k): v for k, v in heads.items()}
    return backbone, parse_layers(heads, fmt, obj)


def read_vicreg(obj):
    fmt = PUBLISHED["vicreg"]
    if not isinstance(obj, dict) or "model" not in obj or not isinstance(obj["model"], dict):
        raise _fail(fmt, obj, "no 'model' entry")
    sd = _strip(obj["model"], "module.")
    backbone = _check_backbone(fmt, obj, _select(sd, "backbone."))
    return backbone, parse_layers(_select(sd, "projector."), fmt, obj)


def read_swav(obj):
    fmt = PUBLISHED["swav"]
    sd = _plain_state_dict(fmt, obj)
    if not any(k.startswith("projection_head.") for k in sd):
        raise _fail(fmt, obj, "no projection_head.* keys")
    backbone = {k: v for k, v in sd.items() if not k.startswith(("projection_head.", "prototypes."))}
    return _check_backbone(fmt, obj, backbone), parse_layers(_select(sd, "projection_head."), fmt, obj)


READERS = {
    "supervised": read_supervised,
    "dino": read_dino,
    "simclr": lambda o: read_vissl(o, "simclr"),
    "barlow": lambda o: read_vissl(o, "barlow"),
    "vicreg": read_vicreg,
    "swav": read_swav,
}


class MLPHead(nn.Sequential):
    """A projector rebuilt from parsed layers: activation after every BN and every inner Linear."""

    def __init__(self, layers: list[tuple[str, dict]], activation: str = "relu"):
        mods: list[nn.Module] = []
        self._load_map: list[tuple[int, dict]] = []
        for i, (kind, p) in enumerate(layers):
            if kind == "linear":
                out_f, in_f = p["weight"].shape
                mods.append(nn.Linear(in_f, out_f, bias="bias" in p))
            else:
                mods.append(nn.BatchNorm1d(p["running_mean"].shape[0], affine="weight" in p))
            self._load_map.append((len(mods) - 1, p))
            nxt = layers[i + 1][0] if i + 1 < len(layers) else None
            if nxt == "linear":  # end of a block: Linear[-BN] then activation
                mods.append(nn.GELU() if activation == "gelu" else nn.ReLU(inplace=True))
        super().__init__(*mods)
        kind, p = layers[-1]
        self.out_dim = p["weight"].shape[0] if kind == "linear" else p["running_mean"].shape[0]

    def state_from_layers(self) -> dict:
        sd = {}
        for idx, p in self._load_map:
            for k, v in p.items():
                sd[f"{idx}.{k}"] = v
        return sd


def build_head(layers, activation: str) -> MLPHead:
    with torch.device("meta"):
        head = MLPHead(layers, activation)
    head.load_state_dict(head.state_from_layers(), strict=True, assign=True)
    return head
