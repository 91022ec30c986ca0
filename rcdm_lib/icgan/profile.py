"""A profile's IC-GAN: its training data (built-in data + one tiny encoder slot) and its generator.

    from rcdm_lib.icgan import load_profile_icgan
    ic = load_profile_icgan("tiny")             # icgan.export of _config.yml (trained by scripts/train_icgan.py)
    x = ic.sample(h, n_per=4)                   # h [N, d] of slot ic.slot -> [N, 4, 3, S, S]

The paper's IC-GAN is conditioned on SwAV ResNet-50 features; the built-in profiles condition
it on the tiny encoder slot named by `icgan.slot` (the same cached features RCDM trains on).
At imagenet128 the official 128px generator file is loaded from `icgan.weights`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rcdm_lib.config import as_settings, repo_path
from rcdm_lib.icgan.generator import Generator, sample_icgan



def _section(profile: dict) -> dict:
    ic = profile.get("icgan")
    if not ic:
        raise ValueError(f"profile {profile['profile']!r} has no 'icgan' section in _config.yml")
    if not ic.get("slot"):
        raise ValueError(f"profile {profile['profile']!r}: set icgan.slot (the representation IC-GAN is "
                         "conditioned on, e.g. simclr_backbone) in _config.yml")
    return ic


@dataclass
class ProfileICGAN:
    G: Generator
    slot: str                 # the representation it is conditioned on
    path: Path
    metadata: dict

    @property
    def image_size(self) -> int:
        return self.G.config.image_size

    def sample(self, h: torch.Tensor, n_per: int = 1, seed: int | None = 0, **kwargs) -> torch.Tensor:
        """h [N, d] -> samples [N, n_per, 3, S, S] in [-1, 1]."""
        return sample_icgan(self.G, h, n_per=n_per, seed=seed, **kwargs)


def reference_neighbours(settings: dict, n_reference: int) -> tuple[int, int, int]:
    """(k_nn, N, k): IC-GAN is trained to cover the k_nn nearest of its N training images; the same fraction of
    `n_reference` reference images is k (at least 1). N: icgan.train_length, else rcdm.train_length, else
    ImageNet's train split (the official generator)."""
    ic = settings.get("icgan") or {}
    k_nn = int((ic.get("train") or {}).get("k_nn") or 50)
    n = int(ic.get("train_length") or (settings.get("rcdm") or {}).get("train_length") or 1_281_167)
    return k_nn, n, max(1, round(k_nn * n_reference / n))


def icgan_training_data(profile: dict | str, device="cpu") -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(images uint8 [N, 3, S, S] at icgan.image_size, features [N, d] of icgan.slot, provenance).

    The features are the feature cache's (rcdm_lib.data.dataset_features): the encoder sees the
    dataset image at its native size, IC-GAN is trained on the same image resized to S.
    """
    from rcdm_lib.data import FactorShapes, dataset_features
    from rcdm_lib.training.sources import load_tiny_encoders, resize_images

    profile = as_settings(profile)
    ic, d = _section(profile), profile["data"]
    prof = dict(profile)
    prof["encoders"] = {**profile["encoders"], "dir": str(repo_path(profile["encoders"]["dir"]))}
    encoders = load_tiny_encoders(prof, device=device)
    if ic["slot"] not in encoders:
        raise ValueError(f"icgan.slot {ic['slot']!r} is not one of this profile's representations {sorted(encoders)}")
    enc = encoders[ic["slot"]]
    length = ic.get("train_length") or (profile.get("rcdm") or {}).get("train_length")
    ds = FactorShapes("train", size=d["size"], length=length, seed=d["seed"])
    images, _ = ds.all_uint8()                                               # [N, 3, E, E]
    cache = repo_path(profile.get("cache_dir", ".cache")) / "features"
    feats = dataset_features(enc, ds, cache, device=device).float()          # [N, d]
    provenance = {"dataset": ds.spec, "slot": ic["slot"], "encoder_sha256": enc.spec.get("weights_sha256")}
    return resize_images(images, ic["image_size"]), feats, provenance


def load_profile_icgan(profile: dict | str, device="cpu") -> ProfileICGAN:
    """The profile's trained IC-GAN generator (EMA weights, eval mode)."""
    from rcdm_lib.icgan.official import load_official_generator
    from rcdm_lib.icgan.training import load_icgan, read_icgan_metadata

    profile = as_settings(profile)
    ic = _section(profile)
    if ic.get("export"):
        path = repo_path(ic["export"])
        if not path.is_file():
            raise FileNotFoundError(f"IC-GAN weights {path} are missing; train them with `python "
                                    f"scripts/train_icgan.py --profile {profile['profile']}` "
                                    f"(or `make book PROFILE={profile['profile']}`)")
        meta = read_icgan_metadata(path)
        if meta.get("slot", ic["slot"]) != ic["slot"]:
            raise ValueError(f"{path} is conditioned on {meta['slot']!r} but icgan.slot is {ic['slot']!r}; "
                             "retrain it with scripts/train_icgan.py")
        return ProfileICGAN(load_icgan(path, device), ic["slot"], path, meta)
    path = ic.get("weights")
    G = load_official_generator(repo_path(path) if path else None, device=device)
    return ProfileICGAN(G, ic["slot"], repo_path(path), {"format": "official IC-GAN BigGAN"})
