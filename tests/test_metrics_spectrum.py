"""High-frequency fraction of the power spectrum: white noise, smooth images, constants."""
import math

import pytest
import torch

from rcdm_lib.metrics.spectrum import high_frequency_fraction


def test_white_noise_matches_the_area_outside_the_disc():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32, generator=g)
    for cutoff in (0.3, 0.5, 0.8):
        assert float(high_frequency_fraction(x, cutoff).mean()) == pytest.approx(1 - math.pi * cutoff ** 2 / 4, abs=0.02)


def test_smooth_images_and_constants():
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.randn(8, 3, 4, 4, generator=g), size=32, mode="bilinear")
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 2.0 - 1   # the highest frequency
    assert float(high_frequency_fraction(smooth).max()) < 0.1
    assert float(high_frequency_fraction(checker.expand(1, 3, 32, 32))) == pytest.approx(1.0)
    assert torch.equal(high_frequency_fraction(torch.ones(2, 3, 8, 8) * 0.3), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        high_frequency_fraction(smooth, cutoff=1.5)
