"""Interpolation between representations (rcdm_lib.analysis.interpolation)."""
from __future__ import annotations

import pytest
import torch

from rcdm_lib.analysis.interpolation import interpolate, lerp, monotone_fraction


class FakeModels:
    """Stands in for ProfileModels: a 'sample' is its initial noise plus the rep's mean."""
    image_size = 4

    def sample(self, slot, h, n_per=1, steps=50, noise=None, seed=0, sampler="ancestral"):
        n = h.shape[0]
        if noise is None:
            noise = torch.randn(n, n_per, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
        elif noise.dim() == 4:
            noise = noise.unsqueeze(0).expand(n, *noise.shape)
        return noise + h.mean(1).view(n, 1, 1, 1, 1)


def test_lerp_end_points_and_midpoint():
    h0, h1 = torch.zeros(5), torch.ones(5)
    out = lerp(h0, h1, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.equal(out[0], h0) and torch.equal(out[2], h1) and torch.allclose(out[1], torch.full((5,), 0.5))


def test_fixed_noise_rows_share_noise_across_alphas():
    res = interpolate(FakeModels(), "s", torch.zeros(3), torch.ones(3), n_alpha=5, n_rows=2, seed=1)
    assert res.fixed_noise.shape == (2, 5, 3, 4, 4) and res.varying_noise.shape == (2, 5, 3, 4, 4)
    # fixed noise: consecutive frames differ only by the representation's step (0.25 here)
    d = res.fixed_noise[:, 1:] - res.fixed_noise[:, :-1]
    assert torch.allclose(d, torch.full_like(d, 0.25), atol=1e-6)
    dv = res.varying_noise[:, 1:] - res.varying_noise[:, :-1]
    assert not torch.allclose(dv, torch.full_like(dv, 0.25), atol=1e-3)


def test_monotone_fraction():
    assert monotone_fraction(torch.tensor([0.0, 1.0, 2.0])) == 1.0
    assert monotone_fraction(torch.tensor([0.0, 1.0, 0.5])) == 0.5


def test_the_official_alpha_band_samples_between_half_and_seven_tenths():
    res = interpolate(FakeModels(), "s", torch.zeros(3), torch.ones(3), n_alpha=5, n_rows=1, alpha_range=(0.5, 0.7))
    assert torch.allclose(res.alphas, torch.tensor([0.5, 0.55, 0.6, 0.65, 0.7]))
    assert torch.allclose(res.reps[:, 0], res.alphas)          # h(alpha) = (1 - alpha) 0 + alpha 1
    d = res.fixed_noise[:, 1:] - res.fixed_noise[:, :-1]
    assert torch.allclose(d, torch.full_like(d, 0.05), atol=1e-6)
    with pytest.raises(ValueError, match="alpha_range"):
        interpolate(FakeModels(), "s", torch.zeros(3), torch.ones(3), alpha_range=(0.7, 0.5))
