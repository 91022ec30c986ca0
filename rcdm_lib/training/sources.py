"""Build the training data of a profile: the tiny slot model's feature cache, or real data."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from rcdm_lib.conditioning import SlotLayout
from rcdm_lib.training.data import FeatureSource, FolderPairSource, SlotFeatureSource

# Supervised is used through its backbone only, as in the paper (its head is the classifier).
HEADLESS = {"supervised"}


def slot_name(method: str, layer: str) -> str:
    return f"{method}_{layer}"


def tiny_slot_names(methods) -> list[str]:
    out = []
    for m in methods:
        out.append(slot_name(m, "backbone"))
        if m not in HEADLESS:
            out.append(slot_name(m, "head"))
    return out


def resize_images(images_uint8: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> uint8 [N, 3, size, size]; area averaging when shrinking by an integer factor."""
    if images_uint8.shape[-1] == size:
        return images_uint8
    x = images_uint8.float()
    if images_uint8.shape[-1] % size == 0:
        x = F.avg_pool2d(x, images_uint8.shape[-1] // size)
    else:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def rcdm_view(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images at the encoder resolution [N, 3, E, E] in [-1, 1] -> the RCDM resolution [N, 3, size, size]."""
    u8 = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return resize_images(u8, size).float() / 127.5 - 1


def load_tiny_encoders(profile: dict, device="cpu") -> dict:
    """{slot name: frozen encoder} for every slot of the profile's tiny encoders."""
    from rcdm_lib.encoders import get_encoder

    enc_cfg = profile["encoders"]
    enc_dir = Path(enc_cfg["dir"])
    out = {}
    for method in enc_cfg["methods"]:
        path = enc_dir / f"{method}.safetensors"
        if not path.is_file():
            raise FileNotFoundError(
                f"tiny encoder {path} is missing; train it with "
                f"`python scripts/train_encoder.py --profile {profile['profile']} --method {method}`"
            )
        for layer in ("backbone",) if method in HEADLESS else ("backbone", "head"):
            out[slot_name(method, layer)] = get_encoder(method, layer=layer, weights=path, device=device)
    return out


def tiny_slot_source(profile: dict, device="cpu", p_null: float | None = None,
                     slot_weights: dict | None = None) -> SlotFeatureSource:
    """The built-in train split at the RCDM resolution, with cached features of every slot.

    Encoders see the dataset image at its native size (profile data.size); RCDM is trained
    on the same image resized to rcdm.image_size. p_null: the profile's rcdm.train.p_null unless
    given; slot_weights: see SlotFeatureSource.
    """
    from rcdm_lib.data import FactorShapes, dataset_features

    r, data_cfg = profile["rcdm"], profile["data"]
    ds = FactorShapes("train", size=data_cfg["size"], length=r["train_length"], seed=data_cfg["seed"])
    images, _ = ds.all_uint8()  # [N, 3, H, W] uint8
    encoders = load_tiny_encoders(profile, device=device)
    cache = Path(profile.get("cache_dir", ".cache")) / "features"
    feats = {name: dataset_features(enc, ds, cache, device=device, images=images).half()
             for name, enc in encoders.items()}  # one rendering of the split for every encoder
    layout = SlotLayout(tuple((n, f.shape[1]) for n, f in feats.items()))
    provenance = {"dataset": ds.spec, "encoder_sha256": {n: e.spec["weights_sha256"] for n, e in encoders.items()}}
    return SlotFeatureSource(resize_images(images, r["image_size"]), feats, layout,
                             p_null=(r.get("train") or {}).get("p_null", 0.1) if p_null is None else p_null, provenance=provenance,
                             slot_weights=slot_weights)


def named_encoder(profile: dict, name: str, layer: str, device):
    """The frozen encoder `--encoder NAME` names: one of `encoders.custom` (the settings file's folder first on the
    Python path for a factory), else a published encoder (`encoders.weights.<name>`) or a tiny one (encoders.dir)."""
    from rcdm_lib.encoders import get_encoder
    from rcdm_lib.encoders.custom import settings_encoder

    if name in ((profile.get("encoders") or {}).get("custom") or {}):
        return settings_encoder(profile, name, device)
    weights = (profile.get("encoders", {}).get("weights") or {}).get(name)
    if weights is None and (profile.get("encoders") or {}).get("dir"):
        tiny = Path(profile["encoders"]["dir"]) / f"{name}.safetensors"
        weights = tiny if tiny.is_file() else None
    return get_encoder(name, layer=layer, weights=weights, device=device)


def shapes_source(profile: dict, encoder, device="cpu") -> FeatureSource:
    """The built-in train split at the RCDM resolution, conditioned on one encoder (its features cached): a
    single-representation RCDM at the smoke and tiny profiles."""
    from rcdm_lib.data import FactorShapes, dataset_features

    r, data_cfg = profile["rcdm"], profile["data"]
    ds = FactorShapes("train", size=data_cfg["size"], length=r["train_length"], seed=data_cfg["seed"])
    images, _ = ds.all_uint8()
    cache = Path(profile.get("cache_dir", ".cache")) / "features"
    feats = dataset_features(encoder, ds, cache, device=device, images=images)
    return FeatureSource(resize_images(images, r["image_size"]), feats.half(), encoder_spec=encoder.spec,
                         provenance={"dataset": ds.spec})


def folder_source(profile: dict, encoder_name: str, layer: str, device) -> FolderPairSource:
    """Real data (ImageNet layout: data.root/train/<class>/<image>) with one encoder computed online: the
    paper's setup. The settings were checked when loaded (rcdm_lib.config.load_settings): data.root holds
    train/ and val/."""
    from rcdm_lib.data import ImageFolder, PreprocessPair

    data_cfg = profile.get("data", {})
    root = data_cfg.get("root")
    if not root:
        raise ValueError(f"profile {profile['profile']!r} needs an image folder: set data.root in your --config file "
                         "(or pass --data), a folder holding train/ and val/")
    root = Path(root) / "train"
    encoder = named_encoder(profile, encoder_name, layer, device)
    pair = PreprocessPair(data_cfg.get("image_size", 128), data_cfg.get("encoder_size", 224), random_flip=True)
    return FolderPairSource(ImageFolder(root, transform=pair), encoder, encoder.rep_dim, device=device)
