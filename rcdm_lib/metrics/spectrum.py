"""How much of an image's energy sits at high spatial frequencies: a number for "looks like noise".

Natural images (and our procedural ones) put most of their energy at low frequencies; the
inputs that gradient-based inversion finds, and the Jacobian rows of a non-robust encoder,
are full of pixel-level patterns. The statistic is the fraction of the (mean-removed) power
spectrum above a radial frequency cutoff, measured per image and channel-summed.

    high_frequency_fraction(images)          # [N] in [0, 1]; images [N, C, H, W]
"""
from __future__ import annotations

import torch


def high_frequency_fraction(images: torch.Tensor, cutoff: float = 0.5) -> torch.Tensor:
    """Fraction [N] of each image's power spectrum at radial frequency above `cutoff` x Nyquist.

    images [N, C, H, W] (any range: each channel's mean is removed first, so a constant image
    has no energy and gets 0). White noise gives about 1 - pi * cutoff^2 / 4 (0.80 at 0.5),
    the area of the frequency square outside the disc; smooth images give much less.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W]; got shape {tuple(images.shape)}")
    if not 0 < cutoff < 1:
        raise ValueError(f"cutoff is a fraction of the Nyquist frequency, in (0, 1); got {cutoff}")
    x = images.double()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2).sum(1)                          # [N, H, W]
    h, w = power.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64).abs() * 2               # in units of Nyquist: [0, 1]
    fx = torch.fft.fftfreq(w, dtype=torch.float64).abs() * 2
    radius = (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt()                  # [H, W]
    high = power[:, radius > cutoff].sum(1)
    total = power.flatten(1).sum(1)
    return torch.where(total > 0, high / total.clamp_min(1e-300), torch.zeros_like(total))
