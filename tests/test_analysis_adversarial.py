"""Targeted FGSM on a linear probe (rcdm_lib.analysis.adversarial), against independent computations."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rcdm_lib.analysis.adversarial import (LinearProbe, fgsm_sweep, fgsm_targeted, first_epsilon, flip_epsilon,
                                           target_gradient_sign)

torch.set_num_threads(1)


def tiny_encoder(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 5 * 5, 6)).double()


def random_probe(d=6, c=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return LinearProbe(mean=torch.randn(d, generator=g, dtype=torch.float64),
                       std=torch.rand(d, generator=g, dtype=torch.float64) + 0.5,
                       weight=torch.randn(d, c, generator=g, dtype=torch.float64),
                       bias=torch.randn(c, generator=g, dtype=torch.float64))


def images(n=5, seed=2):
    # values near +-1 so that clipping matters for some pixels
    return (torch.rand(n, 3, 5, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2.2 - 1.1
            ).clamp(-1, 1)


def test_fgsm_step_matches_per_image_autograd_on_a_tiny_module():
    enc, probe, x = tiny_encoder(), random_probe(), images()
    target = torch.tensor([0, 1, 2, 3, 0])
    eps = 0.07
    out = fgsm_targeted(lambda z: probe(enc(z)), x, target, eps)
    for i in range(x.shape[0]):                       # one image at a time, its own loss
        xi = x[i:i + 1].clone().requires_grad_(True)
        loss = F.cross_entropy(probe(enc(xi)), target[i:i + 1])
        loss.backward()
        expected = (x[i] - eps * xi.grad[0].sign()).clamp(-1, 1)
        assert torch.equal(out[i], expected)
    assert ((out - x).abs() <= eps + 1e-12).all()
    clipped = (x - eps * target_gradient_sign(lambda z: probe(enc(z)), x, target)).abs() > 1
    assert clipped.any() and (out[clipped].abs() == 1).all()     # the clip did something and held the range


def test_fgsm_sign_against_the_closed_form_gradient_of_a_linear_model():
    # encoder h = A vec(x): dCE/dx = A^T diag(1/std) W (softmax(logits) - onehot(target))
    g = torch.Generator().manual_seed(3)
    a = torch.randn(6, 3 * 5 * 5, generator=g, dtype=torch.float64)
    probe, x = random_probe(), images()
    target = torch.tensor([3, 2, 1, 0, 1])
    logits = ((x.flatten(1) @ a.t() - probe.mean) / probe.std) @ probe.weight + probe.bias
    dlogits = logits.softmax(1) - F.one_hot(target, 4).double()
    grad = ((dlogits @ probe.weight.t()) / probe.std) @ a
    got = target_gradient_sign(lambda z: probe(z.flatten(1) @ a.t()), x, target)
    assert torch.equal(got, grad.sign().view_as(x))


def test_targeted_step_lowers_the_target_loss_and_raises_its_probability():
    enc, probe, x = tiny_encoder(), random_probe(), images(16)
    target = torch.arange(16) % 4
    clf = lambda z: probe(enc(z))          # noqa: E731
    before = F.cross_entropy(clf(x), target, reduction="none")
    after = F.cross_entropy(clf(fgsm_targeted(clf, x, target, 1e-3)), target, reduction="none")
    assert (after < before).all()          # a '+' sign (untargeted convention) would raise every loss


def two_pixel_model():
    """h = the two pixels of a [N, 1, 1, 2] image; probe logits = h (class = the larger pixel)."""
    probe = LinearProbe(mean=torch.zeros(2), std=torch.ones(2), weight=torch.eye(2), bias=torch.zeros(2))
    return (lambda z: z.flatten(1)), probe


def test_flip_epsilon_on_a_constructed_case():
    # targeted toward class 1: pixel 0 goes down by eps and pixel 1 up by eps (until clipped).
    # (0.5, 0.25): flips once 0.25 + eps > 0.5 - eps, eps > 0.125 -> 0.13 on a 0.01 grid.
    # (0.9, -1.0): needs eps > 0.95, beyond the grid -> inf.  (0.1, 0.3): already the target -> 0.
    # (1.0, 0.65): pixel 0 falls from 1 -> flips at eps > 0.175 -> 0.18.
    enc, probe = two_pixel_model()
    x = torch.tensor([[0.5, 0.25], [0.9, -1.0], [0.1, 0.3], [1.0, 0.65]]).view(4, 1, 1, 2)
    eps = torch.linspace(0, 0.3, 31)
    sweep = fgsm_sweep(enc, probe, x, 1, eps)
    assert sweep.images.shape == (31, 4, 1, 1, 2) and sweep.predictions.shape == (31, 4)
    expected = torch.tensor([0.13, math.inf, 0.0, 0.18], dtype=torch.float64)
    assert torch.allclose(sweep.flip_epsilon, expected, atol=1e-6), sweep.flip_epsilon
    assert torch.equal(sweep.images[0], x)                  # epsilon 0 is the clean image
    assert (sweep.images <= 1).all() and (sweep.images >= -1).all()
    s = sweep.summary(labels=torch.tensor([0, 0, 1, 0]))
    assert s["flipped_at_max"] == pytest.approx(0.75)
    # the median of [0, 0.13, 0.18, inf] (torch: the lower middle) is 0.13
    assert s["median_flip_epsilon"] == pytest.approx(0.13, abs=1e-6)


def test_first_epsilon_and_flip_epsilon_helpers():
    eps = torch.tensor([0.0, 0.1, 0.2])
    hit = torch.tensor([[False, False], [True, False], [False, False]])
    assert torch.allclose(first_epsilon(eps, hit), torch.tensor([0.1, math.inf], dtype=torch.float64))
    preds = torch.tensor([[0, 0], [2, 0], [2, 2]])
    assert torch.allclose(flip_epsilon(eps, preds, torch.tensor([2, 2])), torch.tensor([0.1, 0.2], dtype=torch.float64))
    with pytest.raises(ValueError, match="ascending"):
        first_epsilon(torch.tensor([0.2, 0.1, 0.3]), hit)
    with pytest.raises(ValueError, match=r"\[E=2, N\]"):
        first_epsilon(eps[:2], hit)


def test_linear_probe_fit_reads_separable_classes_and_validates():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 4
    y = torch.arange(300) % 3
    h = centres[y] + torch.randn(300, 8, generator=g)
    probe = LinearProbe.fit(h, y, num_classes=3)
    assert float((probe.predict(h) == y).float().mean()) > 0.97
    with pytest.raises(ValueError, match="one label each"):
        LinearProbe.fit(h, y[:10], num_classes=3)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        LinearProbe.fit(h, y, num_classes=2)
    with pytest.raises(ValueError, match=r"\[N, 8\]"):
        probe(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=">= 0"):
        fgsm_targeted(lambda z: probe(z.flatten(1)), torch.zeros(1, 8, 1, 1), 0, -0.1)
