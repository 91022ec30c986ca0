"""How good a super-resolved image is: fidelity to the truth, consistency with its input, restored detail.

    psnr(a, b)                         # [N] dB, images in [-1, 1]
    consistency_psnr(sr, low)          # [N] dB: downsample(sr) vs the low-res input
    restored_detail(sr, high, small)   # high-frequency energy of sr / of real images (bilinear: small)
    input_retrieval(sr, low)           # fraction of outputs whose downsample is nearest to their own input

A diffusion upsampler samples plausible detail rather than the mean, so its PSNR against
the true image need not beat bilinear upsampling (Saharia et al. 2021, SR3, report the
same); what it must do is stay consistent with its input and put back the detail that
the low-resolution image cannot carry.
"""
from __future__ import annotations

import torch

from rcdm_lib.metrics.spectrum import high_frequency_fraction
from rcdm_lib.superres.data import downsample


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio [N] in dB of images a, b [N, C, H, W] with values spanning data_range
    (2 for [-1, 1]). Identical images give +inf."""
    if a.shape != b.shape:
        raise ValueError(f"psnr needs images of one shape, got {list(a.shape)} and {list(b.shape)}")
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse)


def consistency_psnr(sr: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """PSNR [N] between the super-resolved images sr [N, C, L, L] brought back to the low
    resolution (the RCDM preprocessing) and the low-res inputs low [N, C, s, s]."""
    return psnr(downsample(sr, low.shape[-1]), low.float())


def detail_energy(images: torch.Tensor, small_size: int) -> torch.Tensor:
    """Spectral energy [N] of images [N, C, L, L] above small_size / L of the Nyquist frequency:
    the detail an image at small_size cannot hold (a bilinear upsample has little)."""
    x = images.double()
    energy = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2).flatten(1).sum(1)   # Parseval: total power / (H W)
    return high_frequency_fraction(images, small_size / images.shape[-1]) * energy


def restored_detail(images: torch.Tensor, reference: torch.Tensor, small_size: int) -> float:
    """Mean detail energy of images [N, C, L, L] over that of reference images [M, C, L, L]
    (real high-res images): small for a bilinear upsample, about 1 when the detail put back
    is as strong as real images'."""
    return float(detail_energy(images, small_size).mean() / detail_energy(reference, small_size).mean().clamp_min(1e-12))


def input_retrieval(sr: torch.Tensor, low: torch.Tensor) -> float:
    """Fraction of super-resolved images sr [N, C, L, L] whose downsampled version is nearer (L2)
    to their own low-res input low [N, C, s, s] than to every other input of the batch
    (chance: 1/N). The content an upsampler must keep is what identifies its input."""
    if sr.shape[0] != low.shape[0] or sr.shape[0] < 2:
        raise ValueError(f"input_retrieval needs N >= 2 outputs and as many inputs, got {sr.shape[0]} and "
                         f"{low.shape[0]}")
    down = downsample(sr, low.shape[-1]).flatten(1).double()          # [N, C s s]
    dist = torch.cdist(down, low.flatten(1).double())                  # [N, N]
    return float((dist.argmin(1) == torch.arange(sr.shape[0])).double().mean())
