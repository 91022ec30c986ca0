"""Representation samplers: Gaussian noise on training representations and the KDE."""
import numpy as np
import pytest
import scipy.stats
import torch

from rcdm_lib.analysis.rep_samplers import GaussianNoiseSampler, KDESampler, class_mean_representations


def reps(n=300, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) @ torch.tensor([[2.0, 0, 0], [0.5, 1.0, 0], [0, 0, 0.3]]) + 1.0


def test_kde_log_density_matches_scipy():
    x = reps()
    kde = KDESampler(x, bandwidth="scott", jitter=0.0)
    ref = scipy.stats.gaussian_kde(x.numpy().T.astype(np.float64), bw_method="scott")
    assert kde.factor == pytest.approx(ref.factor)
    pts = torch.randn(20, 3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(kde.log_density(pts), torch.as_tensor(ref.logpdf(pts.double().numpy().T)), rtol=1e-6)


def test_kde_samples_have_inflated_data_covariance():
    x = reps(n=400)
    kde = KDESampler(x, bandwidth=0.5)
    s = kde.sample(40000, generator=torch.Generator().manual_seed(0)).double()
    expected = torch.cov(x.double().t()) * (1 + 0.5 ** 2) * (399 / 400) + 0 * torch.eye(3)
    assert torch.allclose(torch.cov(s.t()), expected, atol=0.08)
    assert kde.sample(5, generator=torch.Generator().manual_seed(3)).shape == (5, 3)


def test_kde_handles_degenerate_dimensions():
    x = torch.cat([reps(), torch.zeros(300, 1)], 1)          # a dimension that is always 0
    s = KDESampler(x).sample(10, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(s).all() and s[:, 3].abs().max() < 1e-2


def test_gaussian_noise_sampler_scale():
    x = reps(n=200)
    smp = GaussianNoiseSampler(x, std=0.1, relative=False)
    g = torch.Generator().manual_seed(0)
    s = smp.sample(5000, generator=g).double()
    # every sample is within noise of some training point; the residual std is the noise std
    nearest = torch.cdist(s, x.double()).min(1).values
    assert float(nearest.pow(2).mean() / 3) < 0.1 ** 2 * 1.05
    rel = GaussianNoiseSampler(x, std=1.0)
    assert rel.std == pytest.approx(float(x.double().std(0).pow(2).mean().sqrt()))


def test_class_means():
    r = torch.tensor([[0.0, 2.0], [2.0, 0.0], [4.0, 4.0]])
    assert class_mean_representations(r, torch.tensor([0, 0, 1])).tolist() == [[1.0, 1.0], [4.0, 4.0]]
    with pytest.raises(ValueError, match="no examples"):
        class_mean_representations(r, torch.tensor([0, 0, 2]))
