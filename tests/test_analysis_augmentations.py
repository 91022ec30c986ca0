"""Augmentation probes: each named augmentation does what its name says; invariance scores."""
import pytest
import torch

from rcdm_lib.analysis.augmentations import AUGMENTATIONS, augment, invariance_score


def images(n=8, s=16, seed=0):
    return torch.rand(n, 3, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_every_augmentation_keeps_shape_and_range():
    x = images()
    for name in AUGMENTATIONS:
        y = augment(name, x, torch.Generator().manual_seed(0))
        assert y.shape == x.shape and y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5, name
        assert not torch.allclose(y, x), name


def test_specific_augmentations():
    x = images()
    assert torch.equal(augment("flip", x), x.flip(-1))
    g = augment("grayscale", x)
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    assert (augment("solarize", x) <= 0 + 1e-6).all()       # everything above mid-grey is inverted
    with pytest.raises(ValueError, match="expected one of"):
        augment("rotate", x)


def test_invariance_score_extremes():
    x = images(32)
    mean_colour = lambda im: im.mean(dim=(2, 3))      # noqa: E731  flip-invariant
    assert invariance_score(mean_colour, x, "flip") == pytest.approx(0.0, abs=1e-10)
    assert invariance_score(lambda im: im.flatten(1), x, "solarize") > 0.1
