"""The training loss: MSE on epsilon plus the VB term, checked against independent computations."""
import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from rcdm_lib.diffusion import GaussianDiffusion


class FixedOutput:
    """A 'model' returning a fixed eps and variance-interpolation output, recording its calls."""

    def __init__(self, eps, v):
        self.eps, self.v, self.calls = eps, v, []

    def __call__(self, x, t, **kw):
        self.calls.append((t.clone(), kw))
        return torch.cat([self.eps, self.v], dim=1)


def _independent_vb(d, x0, x_t, t, eps, v):
    """KL(q(x_{t-1}|x_t,x_0) || p) / log 2 for t > 0, discretized decoder NLL / log 2 at t = 0."""
    betas = torch.from_numpy(d.betas)
    ab = torch.cumprod(1 - betas, 0)
    out = []
    for i in range(x0.shape[0]):
        ti = int(t[i])
        ab_t, ab_prev = ab[ti], (ab[ti - 1] if ti > 0 else torch.tensor(1.0, dtype=torch.float64))
        beta_t = betas[ti]
        post_var = beta_t * (1 - ab_prev) / (1 - ab_t)
        post_var_clipped = post_var if ti > 0 else betas[1] * (1 - ab[0]) / (1 - ab[1])
        x0_pred = (x_t[i] - torch.sqrt(1 - ab_t) * eps[i]) / torch.sqrt(ab_t)

        def post_mean(x0_):
            return torch.sqrt(ab_prev) * beta_t / (1 - ab_t) * x0_ + torch.sqrt(1 - beta_t) * (1 - ab_prev) / (1 - ab_t) * x_t[i]

        frac = (v[i] + 1) / 2
        log_var = frac * torch.log(beta_t) + (1 - frac) * torch.log(post_var_clipped)
        p = Normal(post_mean(x0_pred), torch.exp(0.5 * log_var))
        if ti > 0:
            q = Normal(post_mean(x0[i]), torch.sqrt(post_var))
            out.append(kl_divergence(q, p).mean() / math.log(2))
        else:
            hi = torch.where(x0[i] > 0.999, torch.ones_like(x0[i]), p.cdf(x0[i] + 1 / 255))
            lo = torch.where(x0[i] < -0.999, torch.zeros_like(x0[i]), p.cdf(x0[i] - 1 / 255))
            out.append(-torch.log(hi - lo).mean() / math.log(2))
    return torch.stack(out)


@pytest.mark.parametrize("respacing", ["", "ddim40"])
def test_vb_term_equals_independent_kl_and_decoder_nll(respacing):
    torch.manual_seed(0)
    d = GaussianDiffusion.from_official(1000, "linear", learn_sigma=True, timestep_respacing=respacing)
    n = 6
    x0 = (torch.randint(0, 256, (n, 3, 4, 4)).double() / 127.5 - 1)  # quantised images
    t = torch.tensor([0, 0, 1, 5, d.num_timesteps // 2, d.num_timesteps - 1])
    noise = torch.randn_like(x0)
    eps = noise + 0.3 * torch.randn_like(x0)
    v = torch.rand_like(x0) * 2 - 1
    model = FixedOutput(eps, v)
    losses = d.training_losses(model, x0, t, model_kwargs={"rep": torch.ones(n, 2)}, noise=noise)
    x_t = d.q_sample(x0, t, noise)
    want = _independent_vb(d, x0, x_t, t, eps, v)
    scale = d.num_timesteps / 1000
    kl_rows = t > 0
    torch.testing.assert_close(losses["vb"][kl_rows], scale * want[kl_rows], rtol=1e-9, atol=1e-12)
    # the official decoder uses the tanh approximation of the normal CDF: close, not identical
    torch.testing.assert_close(losses["vb"][~kl_rows], scale * want[~kl_rows], rtol=2e-3, atol=1e-4)
    torch.testing.assert_close(losses["mse"], ((noise - eps) ** 2).mean(dim=(1, 2, 3)))
    torch.testing.assert_close(losses["loss"], losses["mse"] + losses["vb"])
    # the model is called with the original timesteps and the conditioning kwargs
    called_t, kw = model.calls[0]
    assert torch.equal(called_t, torch.from_numpy(d.timestep_map)[t]) and "rep" in kw


def test_vb_term_does_not_train_the_mean():
    d = GaussianDiffusion.from_official(1000, "linear", learn_sigma=True)
    eps = torch.randn(2, 3, 4, 4, requires_grad=True)
    v = torch.zeros(2, 3, 4, 4, requires_grad=True)
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    losses = d.training_losses(lambda x, t: torch.cat([eps, v], 1), x0, torch.tensor([3, 400]))
    losses["vb"].sum().backward()
    assert eps.grad is None or eps.grad.abs().max() == 0
    assert v.grad.abs().max() > 0


def test_fixed_variance_loss_is_plain_mse_and_checks_channels():
    d = GaussianDiffusion.from_official(1000, "linear", learn_sigma=False)
    x0, noise = torch.zeros(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    losses = d.training_losses(lambda x, t: torch.zeros_like(x), x0, torch.tensor([1, 2]), noise=noise)
    assert set(losses) == {"mse", "loss"}
    torch.testing.assert_close(losses["loss"], noise.square().mean(dim=(1, 2, 3)))
    with pytest.raises(ValueError, match="expects the model to output 3 channels, got 6"):
        d.p_mean_variance(lambda x, t: torch.zeros(2, 6, 4, 4), x0, torch.tensor([1, 2]))


def test_q_sample_moments():
    d = GaussianDiffusion.from_official(1000, "linear")
    x0 = torch.full((20000, 1, 1, 1), 0.5, dtype=torch.float64)
    t = torch.full((20000,), 300)
    x_t = d.q_sample(x0, t, torch.randn_like(x0))
    ab = d.alphas_cumprod[300]
    assert abs(x_t.mean().item() - 0.5 * np.sqrt(ab)) < 4 * np.sqrt(1 - ab) / np.sqrt(20000)
    assert abs(x_t.std().item() / np.sqrt(1 - ab) - 1) < 0.03


def test_schedule_tables_reach_the_device_once():
    """Each [T] table is copied to a device on first use and reused: a host copy per call would make every
    GPU step wait (the values are the oracle tests')."""
    d = GaussianDiffusion.from_official(steps=50, noise_schedule="cosine", learn_sigma=True)
    x0, t = torch.randn(4, 3, 8, 8), torch.tensor([0, 10, 20, 49])
    d.q_sample(x0, t, noise=torch.randn_like(x0))
    tables = dict(d._device_tables)
    assert set(tables) == {("sqrt_alphas_cumprod", x0.device), ("sqrt_one_minus_alphas_cumprod", x0.device)}
    d.q_sample(x0, t, noise=torch.randn_like(x0))
    assert d._device_tables.keys() == tables.keys()
    assert all(d._device_tables[k] is v for k, v in tables.items())
    torch.testing.assert_close(d._extract("sqrt_alphas_cumprod", t, x0.shape).flatten(),
                               torch.from_numpy(d.sqrt_alphas_cumprod[t.numpy()]).float())
