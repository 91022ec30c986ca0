"""A profile's trained models, loaded together: the RCDM, its diffusion process, the encoders.

    from rcdm_lib.models import load_profile_models
    m = load_profile_models("tiny")
    h = m.encode("dino_backbone", images)          # images [N, 3, E, E] in [-1, 1]
    x = m.sample("dino_backbone", h, n_per=4)      # [N, 4, 3, S, S]

Training is not done here: `make book` (or scripts/train_encoder.py and scripts/train.py)
produce the files; a missing file raises an error that names it and the command to run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rcdm_lib.config import as_settings, repo_path
from rcdm_lib.sampling import sample_from_reps
from rcdm_lib.training.config import DiffusionConfig
from rcdm_lib.training.sources import load_tiny_encoders, rcdm_view
from rcdm_lib.unet import UNet, load_unet, read_unet_extra



@dataclass
class ProfileModels:
    profile: dict
    unet: UNet
    diffusion_config: DiffusionConfig
    encoders: dict          # slot name -> FrozenEncoder
    device: torch.device

    @property
    def slots(self) -> list[str]:
        return self.unet.config.slot_layout.names

    @property
    def image_size(self) -> int:
        return self.unet.config.image_size

    def diffusion(self, steps: int | None = 50, sampler: str = "ancestral"):
        """The process respaced to `steps` steps for `sampler` (DiffusionConfig.for_sampling)."""
        return self.diffusion_config.for_sampling(steps, sampler)

    def _check_slot(self, slot: str) -> None:
        if slot not in self.encoders:
            raise ValueError(f"unknown representation {slot!r}; this profile's model has {self.slots}")

    def encode(self, slot: str, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Representation of images [N, 3, E, E] in [-1, 1] (encoder resolution) -> [N, d]."""
        self._check_slot(slot)
        return self.encoders[slot].embed(images, batch_size)

    def condition(self, slot: str, h: torch.Tensor) -> torch.Tensor:
        """The slot-model conditioning vector for representation h [N, d] of `slot` -> [N, D]."""
        self._check_slot(slot)
        return self.unet.config.slot_layout.fill(slot, h.float())

    def sample(self, slot: str | None, h: torch.Tensor | None = None, n_per: int = 4, steps: int = 50,
               sampler: str = "ancestral", **kwargs) -> torch.Tensor:
        """RCDM samples [N, n_per, 3, S, S] for representations h [N, d] of `slot`.

        slot=None with h=None samples the null condition (the unconditional model); pass
        n=... in kwargs for how many. Ancestral sampling is the default: at the tiny scale,
        DDIM with 50 steps gives visibly noisier samples (artifacts/tiny/rcdm grids).
        """
        if slot is None:
            n = kwargs.pop("n", 1)
            rep = self.unet.null_rep(n)
        else:
            rep = self.condition(slot, h)
        return sample_from_reps(self.unet, self.diffusion(steps, sampler), rep, n_per=n_per, sampler=sampler,
                                **kwargs)

    def rcdm_view(self, images: torch.Tensor) -> torch.Tensor:
        """Images at the encoder resolution [N, 3, E, E] in [-1, 1] -> the RCDM resolution, for display."""
        return rcdm_view(images, self.image_size)


def load_profile_models(profile: dict | str, device: str | torch.device = "cpu") -> ProfileModels:
    """Load the slot RCDM (EMA weights) and the encoders of a built-in-data profile (smoke, tiny)."""
    profile = as_settings(profile)
    r = profile.get("rcdm") or {}
    if "export" not in r:
        raise ValueError(f"profile {profile['profile']!r} has no rcdm.export path in _config.yml")
    path = repo_path(r["export"])
    if not path.is_file():
        raise FileNotFoundError(
            f"RCDM weights {path} are missing; train them with `python scripts/train.py --profile "
            f"{profile['profile']}` (or `make book PROFILE={profile['profile']}`)"
        )
    unet = load_unet(path, device=device).eval()
    diff = DiffusionConfig(**(read_unet_extra(path, "diffusion") or r.get("diffusion") or {}))
    prof = dict(profile)
    prof["encoders"] = {**profile["encoders"], "dir": str(repo_path(profile["encoders"]["dir"]))}
    encoders = load_tiny_encoders(prof, device=device)
    missing = [s for s in unet.config.slot_layout.names if s not in encoders]
    if missing:
        raise ValueError(f"{path} is conditioned on {missing}, which the profile's encoders do not provide")
    return ProfileModels(profile=profile, unet=unet, diffusion_config=diff,
                         encoders={s: encoders[s] for s in unet.config.slot_layout.names},
                         device=torch.device(device))
