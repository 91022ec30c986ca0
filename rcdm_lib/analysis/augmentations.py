"""Augmentation probes (paper Fig. 4, 22-23): apply one named augmentation to the conditioning
image, encode it, and see (by sampling RCDM) or measure (by distances, factor probes) whether the
representation noticed.

Each probe is a fixed, strong setting of one augmentation of the SSL menu, so that "invariant"
means invariant to that transformation, not to an average over random parameters:

    x_aug = augment("grayscale", images)          # images [N, 3, H, W] in [-1, 1]
    s = invariance_score(encode, images, "flip")  # 0: invariant, ~1: as far as a random image
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from rcdm_lib.data.augment import color_jitter

AUGMENTATIONS = ("scale", "grayscale", "color_jitter", "flip", "crop", "solarize")

SCALE_ZOOM = 0.6        # "scale": the central 60% of the side, resized back (a zoom-in)
CROP_SIDE = 0.6         # "crop": a 60%-side crop at a random position, resized back
JITTER = dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.25)   # strong hue: colour changes


def _affine_crop(x: torch.Tensor, side: float, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = side
    theta[:, 1, 1] = side
    theta[:, 0, 2] = cx
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def augment(name: str, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The named augmentation of images [N x 3 x H x W] in [-1, 1]; generator seeds the random ones."""
    x = images.float()
    n = x.shape[0]
    if name == "scale":
        z = torch.zeros(n, dtype=x.dtype)
        return _affine_crop(x, SCALE_ZOOM, z, z)
    if name == "crop":
        lim = 1 - CROP_SIDE
        cx = (2 * torch.rand(n, generator=generator) - 1) * lim
        cy = (2 * torch.rand(n, generator=generator) - 1) * lim
        return _affine_crop(x, CROP_SIDE, cx.to(x.dtype), cy.to(x.dtype))
    if name == "flip":
        return x.flip(-1)
    x01 = (x + 1) / 2
    if name == "grayscale":
        g = 0.299 * x01[:, 0:1] + 0.587 * x01[:, 1:2] + 0.114 * x01[:, 2:3]
        return g.expand_as(x01) * 2 - 1
    if name == "color_jitter":
        return color_jitter(x01, generator=generator, **JITTER) * 2 - 1
    if name == "solarize":
        return torch.where(x01 >= 0.5, 1 - x01, x01) * 2 - 1
    raise ValueError(f"unknown augmentation {name!r}; expected one of {AUGMENTATIONS}")


@torch.no_grad()
def invariance_score(encode: Callable, images: torch.Tensor, name: str, seed: int = 0) -> float:
    """E||h(x) - h(aug x)||^2 / E||h(x) - h(x')||^2 over random pairs x != x' of `images`.

    0 means the representation ignores the augmentation; about 1 means the augmented image is
    as far from the original as a random other image is.
    """
    if images.shape[0] < 2:
        raise ValueError("invariance_score needs at least 2 images (the denominator uses random pairs)")
    g = torch.Generator().manual_seed(seed)
    h = encode(images).double()
    ha = encode(augment(name, images, g)).double()
    num = ((h - ha) ** 2).sum(1).mean()
    perm = (torch.arange(h.shape[0]) + torch.randint(1, h.shape[0], (1,), generator=g)) % h.shape[0]
    den = ((h - h[perm]) ** 2).sum(1).mean()
    return float(num / den.clamp_min(1e-12))
