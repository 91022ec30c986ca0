"""Closed-form oracle: with the exact epsilon predictor of Gaussian data, samplers reproduce it.

For x0 ~ N(mu, s^2 I) and x_t = sqrt(abar) x0 + sqrt(1 - abar) eps,
E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) mu) / (abar s^2 + 1 - abar).
Tolerances: with N samples the mean has standard error s / sqrt(N) and the standard
deviation s / sqrt(2N) (0.5% at N = 20000). Respaced samplers add a discretisation bias
that shrinks with the step count (measured: DDIM std bias -5.8% at 50 steps, -1.7% at 200,
-0.6% at 1000 for s = 0.5), so their std tolerance is that bias plus 4 standard errors.
"""
import pytest
import torch

from rcdm_lib.diffusion import GaussianDiffusion

N = 20000
MU = torch.tensor([0.3, -0.5, 0.0, 0.1], dtype=torch.float64).reshape(1, 1, 2, 2)
S = torch.tensor([0.5, 0.8, 1.0, 0.6], dtype=torch.float64).reshape(1, 1, 2, 2)


def exact_eps_model(full: GaussianDiffusion):
    ab_all = torch.from_numpy(full.alphas_cumprod)

    def model(x, t, rep=None):  # t: original timesteps, as the samplers call the network
        ab = ab_all[t].reshape(-1, 1, 1, 1)
        return torch.sqrt(1 - ab) * (x - torch.sqrt(ab) * MU) / (ab * S**2 + 1 - ab)

    return model


@pytest.mark.parametrize(
    "respacing,sampler,std_tol",
    [("", "ancestral", 0.02), ("100", "ancestral", 0.04), ("ddim50", "ddim", 0.08)],
)
def test_sampler_reproduces_gaussian(respacing, sampler, std_tol):
    full = GaussianDiffusion.from_official(1000, "linear", learn_sigma=False)
    d = GaussianDiffusion.from_official(1000, "linear", learn_sigma=False, timestep_respacing=respacing)
    model = exact_eps_model(full)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(N, 1, 2, 2, generator=g, dtype=torch.float64)
    if sampler == "ancestral":
        x = d.p_sample_loop(model, noise.shape, noise=noise, clip_denoised=False, generator=g)
    else:
        x = d.ddim_sample_loop(model, noise.shape, noise=noise, eta=0.0, clip_denoised=False)
    mean, std = x.mean(0), x.std(0)
    se_mean = S / N**0.5
    assert ((mean - MU).abs() < 4.5 * se_mean).all(), (mean - MU) / se_mean
    assert ((std / S - 1).abs() < std_tol).all(), std / S - 1


def test_a_wrong_denoiser_is_caught():
    """The oracle has power: a denoiser for N(mu, (1.1 s)^2) fails the 1000-step check."""
    full = GaussianDiffusion.from_official(1000, "linear", learn_sigma=False)
    ab_all = torch.from_numpy(full.alphas_cumprod)

    def wrong(x, t):
        ab = ab_all[t].reshape(-1, 1, 1, 1)
        return torch.sqrt(1 - ab) * (x - torch.sqrt(ab) * MU) / (ab * (1.1 * S) ** 2 + 1 - ab)

    g = torch.Generator().manual_seed(0)
    x = full.p_sample_loop(wrong, (N, 1, 2, 2), clip_denoised=False, generator=g, device="cpu")
    assert ((x.std(0) / S - 1).abs() > 0.05).all()
