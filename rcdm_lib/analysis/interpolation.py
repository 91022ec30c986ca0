"""Interpolation between two images' representations (paper Fig. 1c, 15, 16).

The paper samples RCDM along the straight line h(alpha) = (1 - alpha) h0 + alpha h1 between
two representations, once with the same initial noise for every alpha ("fixed noise":
only the representation changes along a row) and once with fresh noise per sample
("varying noise": what the representation leaves free changes too).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def lerp(h0: torch.Tensor, h1: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of two representations [d] at alphas [A] -> [A, d]."""
    if h0.shape != h1.shape or h0.dim() != 1:
        raise ValueError(f"h0 and h1 must be two vectors [d] of one size, got {list(h0.shape)} and {list(h1.shape)}")
    a = alphas.to(h0.dtype).unsqueeze(1)
    return (1 - a) * h0.unsqueeze(0) + a * h1.unsqueeze(0)


@dataclass
class Interpolation:
    alphas: torch.Tensor       # [A]
    reps: torch.Tensor         # [A, d]
    fixed_noise: torch.Tensor  # [R, A, 3, S, S] in [-1, 1]; one initial noise per row
    varying_noise: torch.Tensor  # [R, A, 3, S, S] in [-1, 1]; fresh noise per sample


def interpolate(models, slot: str, h0: torch.Tensor, h1: torch.Tensor, n_alpha: int = 9,
                n_rows: int = 3, steps: int = 50, seed: int = 0, alpha_range=(0.0, 1.0)) -> Interpolation:
    """RCDM samples along the line from h0 to h1 at n_alpha evenly spaced alphas in alpha_range (the official
    script, facebookresearch/RCDM scripts/image_sample_interpolation.py, samples linspace(0.5, 0.7): at 128px the
    samples stay with one image outside that band). `models` is a run (rcdm_lib.run) or ProfileModels."""
    if n_alpha < 2:
        raise ValueError(f"n_alpha must be at least 2 (the two end points), got {n_alpha}")
    lo, hi = (float(a) for a in alpha_range)
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"alpha_range must be [low, high] with 0 <= low < high <= 1, got {list(alpha_range)}")
    alphas = torch.linspace(lo, hi, n_alpha)
    reps = lerp(h0.float(), h1.float(), alphas)
    s = models.image_size
    gen = torch.Generator().manual_seed(seed)
    row_noise = torch.randn(n_rows, 3, s, s, generator=gen)          # shared by every alpha of a row
    # DDIM (eta = 0) is deterministic given the initial noise: along a row only h changes.
    fixed = models.sample(slot, reps, n_per=n_rows, steps=steps, noise=row_noise, seed=seed, sampler="ddim")
    varying = models.sample(slot, reps, n_per=n_rows, steps=steps, seed=seed + 1)
    return Interpolation(alphas=alphas, reps=reps, fixed_noise=fixed.transpose(0, 1).contiguous(),
                         varying_noise=varying.transpose(0, 1).contiguous())


def reencode(models, slot: str, images: torch.Tensor, size: int) -> torch.Tensor:
    """Representations of RCDM-size images [N, 3, S, S], resized to the encoder's input `size`."""
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False)
    return models.encode(slot, x.clamp(-1, 1))


def progress_along_path(models, slot: str, frames: torch.Tensor, h0: torch.Tensor, h1: torch.Tensor,
                        size: int) -> torch.Tensor:
    """How far each frame [A, 3, S, S] has moved from h0 towards h1, re-encoded:
    cos(h(frame), h1) - cos(h(frame), h0) -> [A]; it rises along a faithful interpolation."""
    h = reencode(models, slot, frames, size)
    return F.cosine_similarity(h, h1.unsqueeze(0)) - F.cosine_similarity(h, h0.unsqueeze(0))


def monotone_fraction(values: torch.Tensor) -> float:
    """Fraction of consecutive steps [A] -> [A-1] where the value increases."""
    return float((values[1:] > values[:-1]).float().mean())
