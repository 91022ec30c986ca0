"""A profile's super-resolution model: ours (smoke, tiny; scripts/train_superres.py) or ADM's (imagenet128).

    from rcdm_lib.superres import load_profile_superres
    sr = load_profile_superres("tiny")             # sr.model, sr.diffusion(steps), sr.small_size, sr.large_size
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from rcdm_lib.config import as_settings, repo_path
from rcdm_lib.superres.model import SuperResUNet, load_superres, read_metadata
from rcdm_lib.superres.official import RELEASE_PAGE, UPSAMPLER_FLAGS, load_official_upsampler
from rcdm_lib.training.config import DiffusionConfig



@dataclass
class ProfileSuperRes:
    model: SuperResUNet
    diffusion_config: DiffusionConfig
    path: Path
    official: bool        # an ADM release (class-conditional: needs one-hot ImageNet classes as rep)

    @property
    def small_size(self) -> int:
        return self.model.config.small_size

    @property
    def large_size(self) -> int:
        return self.model.config.image_size

    def diffusion(self, steps: int | None = 50, sampler: str = "ancestral"):
        """The process respaced to `steps` (evenly strided; "ddimN" for DDIM), or the full one for None."""
        return self.diffusion_config.for_sampling(steps, sampler)


def load_profile_superres(profile: dict | str, device: str | torch.device = "cpu") -> ProfileSuperRes:
    """The super-resolution model of a profile (_config.yml, section `superres`).

    `superres.checkpoint` names a local official ADM upsampler file (imagenet128);
    otherwise `superres.export` is the file scripts/train_superres.py wrote.
    """
    profile = as_settings(profile)
    name = profile["profile"]
    sr = profile.get("superres")
    if not sr:
        raise ValueError(f"profile {name!r} has no 'superres' section in _config.yml")
    if "checkpoint" in sr:
        if not sr["checkpoint"]:
            raise FileNotFoundError(
                f"profile {name!r} needs a local ADM upsampler: set superres.checkpoint in your --config file "
                f"to one of the files published by openai/guided-diffusion ({', '.join(UPSAMPLER_FLAGS)}; "
                f"{RELEASE_PAGE})")
        path = repo_path(sr["checkpoint"])
        model, diff = load_official_upsampler(path, flags=sr.get("flags"))
        return ProfileSuperRes(model.to(device).eval(), diff, path, official=True)
    path = repo_path(sr["export"])
    if not path.is_file():
        raise FileNotFoundError(
            f"super-resolution model {path} is missing; train it with "
            f"`python scripts/train_superres.py --profile {name}` (or `make book PROFILE={name}`)")
    meta = read_metadata(path)
    diff = DiffusionConfig(**json.loads(meta["diffusion"])) if "diffusion" in meta else DiffusionConfig(
        **(sr.get("diffusion") or {}))
    return ProfileSuperRes(load_superres(path, device=device).eval(), diff, path, official=False)
