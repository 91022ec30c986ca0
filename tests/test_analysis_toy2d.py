"""The 2-D toy of the methods at a glance (rcdm_lib.analysis.toy2d), against independent oracles.

Tolerances: with n points in a cluster, a proportion has standard error sqrt(w (1 - w) / N)
a cluster mean std / sqrt(n) and a cluster std std / sqrt(2 n); checks allow 4.5 standard
errors. The 200-step respaced ancestral sampler (linear schedule, fixed_large variance) adds a
bias to the spread: measured on this ring (std 0.15, 4000 points), +9% at 100 steps, +4.5% at
200, +0.5% at 1000; the within-cluster std is allowed that 5% on top of its sampling error.
"""
from __future__ import annotations

import math

import pytest
import torch

from rcdm_lib.analysis.toy2d import (ExactDenoiser, Mixture2D, angle_error, diffusion_trajectories, direction,
                                     match_representation, posterior_mean)
from rcdm_lib.diffusion import GaussianDiffusion

torch.set_num_threads(1)
N = 4000
WEIGHTS = [0.3, 0.05, 0.2, 0.05, 0.1, 0.1, 0.15, 0.05]
STD = 0.15


def processes(steps="200"):
    full = GaussianDiffusion.from_official(1000, "linear", learn_sigma=False)
    return full, GaussianDiffusion.from_official(1000, "linear", learn_sigma=False, timestep_respacing=steps)


def sample(model, n=N, seed=0, rep=None):
    full, d = processes()
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, 2, generator=g, dtype=torch.float64)
    kw = None if rep is None else {"rep": rep.expand(n, 2)}
    return diffusion_trajectories(d, model, x_T, model_kwargs=kw, generator=g)


def test_exact_denoiser_reproduces_the_mixture():
    mix = Mixture2D.ring(8, radius=2.0, std=STD, weights=WEIGHTS)
    full, _ = processes()
    traj = sample(ExactDenoiser(mix, full.alphas_cumprod))
    assert traj.shape == (201, N, 2)
    x = traj[-1]
    comp, dist = mix.nearest_component(x)
    assert (dist < 5).float().mean() > 0.995                     # samples sit in the clusters
    w = torch.tensor(WEIGHTS, dtype=torch.float64)
    prop = torch.bincount(comp, minlength=8).double() / N
    se = (w * (1 - w) / N).sqrt()
    assert ((prop - w).abs() < 4.5 * se).all(), (prop - w) / se
    for k in range(8):
        xk = x[comp == k]
        assert ((xk.mean(0) - mix.means[k]).abs() < 4.5 * STD / len(xk) ** 0.5 + 0.01).all(), k
        assert ((xk.std(0) / STD - 1).abs() < 0.05 + 4.5 / (2 * len(xk)) ** 0.5).all(), (k, xk.std(0))
    overall = (w.unsqueeze(1) * mix.means).sum(0)
    assert ((x.mean(0) - overall).abs() < 4.5 * (2.0 / N ** 0.5)).all()


def test_a_denoiser_of_other_weights_is_caught():
    """The proportions check has power: the uniform-weight denoiser misses the true proportions."""
    truth = torch.tensor(WEIGHTS, dtype=torch.float64)
    full, _ = processes()
    x = sample(ExactDenoiser(Mixture2D.ring(8, 2.0, STD), full.alphas_cumprod))[-1]
    comp, _ = Mixture2D.ring(8, 2.0, STD).nearest_component(x)
    prop = torch.bincount(comp, minlength=8).double() / N
    assert ((prop - truth).abs() > 4.5 * (truth * (1 - truth) / N).sqrt()).any()


def anisotropic_ring():
    """Six clusters on a circle of radius 2, each elongated (std at most 0.2 x 0.1) at its own angle."""
    ring = Mixture2D.ring(6, radius=2.0, std=1.0, weights=[0.3, 0.1, 0.2, 0.1, 0.2, 0.1])
    rot = torch.stack([torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
                       for a in (0.0, 0.7, 1.9, 2.2, 0.4, 1.3)])
    size = torch.tensor([1.0, 0.8, 0.7, 0.9, 0.6, 0.75], dtype=torch.float64).view(6, 1, 1)  # unequal determinants
    covs = size ** 2 * (rot @ torch.diag(torch.tensor([0.2 ** 2, 0.1 ** 2], dtype=torch.float64)) @ rot.transpose(1, 2))
    return Mixture2D(ring.weights, ring.means, covs)


def overlapping_mixture():
    """Three overlapping components of unequal, correlated covariances: every term of the
    posterior (responsibilities with their determinants, the per-component shrinkage) matters."""
    f = lambda v: torch.tensor(v, dtype=torch.float64)        # noqa: E731
    return Mixture2D(f([0.5, 0.3, 0.2]), f([[0.0, 0.0], [1.0, 0.5], [-0.5, 1.0]]),
                     f([[[0.5, 0.2], [0.2, 0.3]], [[0.1, 0.0], [0.0, 0.6]], [[0.3, -0.1], [-0.1, 0.2]]]))


@pytest.mark.parametrize("restricted", [False, True])
def test_posterior_mean_matches_monte_carlo(restricted):
    """E[x0 | x_t] in closed form vs self-normalised importance sampling over x0 ~ the mixture."""
    mix = overlapping_mixture()
    u = torch.tensor([[math.cos(0.7), math.sin(0.7)]], dtype=torch.float64)
    if restricted:
        r = mix.restrict_to_rays(u)
        mix = Mixture2D(r.weights[0], r.means[0], r.covs[0])
    g = torch.Generator().manual_seed(1)
    x0, _ = mix.sample(1_000_000, generator=g)
    for ab, x_t in [(0.3, [0.5, -0.2]), (0.6, [-0.8, 0.5]), (0.9, [-0.8, 0.5]), (0.9, [0.5, -0.2]),
                    (0.97, [0.3, 0.6])]:
        x_t = torch.tensor([x_t], dtype=torch.float64)
        logw = -((x_t - ab ** 0.5 * x0) ** 2).sum(1) / (2 * (1 - ab))
        wts = torch.softmax(logw, 0)
        mc = (wts.unsqueeze(1) * x0).sum(0)
        ess = 1 / (wts ** 2).sum()
        se = ((wts.unsqueeze(1) * (x0 - mc) ** 2).sum(0) / ess).sqrt()     # Monte Carlo standard error
        assert ess > 2000, ess
        got = posterior_mean(mix, x_t, ab)[0]
        assert ((got - mc).abs() < 5 * se + 1e-4).all(), (ab, got, mc, se)


def test_restriction_to_a_ray_matches_quadrature():
    """The restricted mixture's density along the ray {r u : r > 0} vs p(r u) integrated numerically.

    Its components are kept untruncated at r = 0; with clusters 2 from the origin and at most
    0.2 wide that mass is below 1e-6, so the two agree to quadrature accuracy."""
    mix = anisotropic_ring()
    for theta in (0.3, 0.7, 2.5):          # 0.7 lies between two clusters: both contribute
        u = torch.tensor([math.cos(theta), math.sin(theta)], dtype=torch.float64)
        r = torch.linspace(0, 6, 60001, dtype=torch.float64)
        dr = float(r[1] - r[0])
        p = mix.log_prob(r.unsqueeze(1) * u).exp()
        p = p / (p.sum() * dr)
        res = mix.restrict_to_rays(u.unsqueeze(0))
        w, m = res.weights[0], res.means[0] @ u                  # weights and means along the ray
        v = torch.einsum("i,kij,j->k", u, res.covs[0], u)
        f = (w * torch.exp(-(r.unsqueeze(1) - m) ** 2 / (2 * v)) / (2 * math.pi * v).sqrt()).sum(1)
        assert (f - p).abs().max() < 1e-4 * p.max(), (theta, (f - p).abs().max())
        assert (w > 1e-2).sum() == (2 if theta == 0.7 else 1)
        assert torch.allclose(res.covs[0] @ torch.stack([-u[1], u[0]]), torch.zeros(6, 2, dtype=torch.float64),
                              atol=1e-12)                        # rank 1: nothing across the ray


def test_conditioning_restricts_samples_to_the_conditioning_cluster():
    mix = Mixture2D.ring(8, radius=2.0, std=STD, weights=WEIGHTS)
    full, _ = processes()
    model = ExactDenoiser(mix, full.alphas_cumprod)
    for k in (1, 3, 6):                     # 1 and 3 are rare clusters (weight 0.05)
        h = direction(mix.means[k:k + 1] + torch.tensor([[0.05, -0.08]], dtype=torch.float64))
        x = sample(model, n=1000, seed=k, rep=h)[-1]
        comp, _ = mix.nearest_component(x)
        assert (comp == k).all(), torch.bincount(comp, minlength=8)
        assert angle_error(x, h).max() < 0.03                  # on the ray (the last step's noise: ~0.01)
        radius = x.norm(dim=1)
        assert abs(radius.mean() - 2.0) < 0.05 and abs(radius.std() / STD - 1) < 0.15


def test_null_condition_is_the_unconditional_model():
    mix = Mixture2D.ring(8, radius=2.0, std=STD)
    full, _ = processes()
    model = ExactDenoiser(mix, full.alphas_cumprod)
    x = torch.randn(6, 2, dtype=torch.float64)
    t = torch.tensor([10, 100, 300, 500, 700, 999])
    rep = torch.zeros(6, 2, dtype=torch.float64)
    rep[:3] = direction(torch.randn(3, 2, dtype=torch.float64))
    out = model(x, t, rep=rep)
    assert torch.allclose(out[3:], model(x, t)[3:]) and not torch.allclose(out[:3], model(x, t)[:3])


def test_representation_matching_reaches_the_ray_at_its_own_radius():
    """Gradient descent on |x/|x| - h*|^2 / 2 moves across the ray only (its gradient is
    orthogonal to x), so it ends on the ray at about the starting radius: off the data."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 2, generator=g, dtype=torch.float64) + 0.3     # away from the origin
    h = torch.tensor([0.0, 1.0], dtype=torch.float64)
    traj = match_representation(direction, h, x0, steps=2000, lr=0.05)
    assert traj.shape == (2001, 64, 2)
    end = traj[-1]
    ok = angle_error(x0, h) < 2.5          # starts almost opposite the ray converge too slowly
    assert (angle_error(end[ok], h) < 1e-3).all()
    r0, r1 = x0.norm(dim=1), end.norm(dim=1)
    assert (r1 >= r0 - 1e-9).all() and ((r1 / r0)[ok] < 1.3).all()
