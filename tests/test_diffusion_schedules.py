"""Schedules against the official fixture, respacing against the full process."""
import json

import numpy as np
import pytest

from rcdm_lib.diffusion import GaussianDiffusion, space_timesteps


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedules_match_official(official_fixtures, schedule):
    ref = json.loads((official_fixtures / "diffusion_schedules_full.json").read_text())[f"{schedule}_full"]
    d = GaussianDiffusion.from_official(1000, schedule, learn_sigma=True)
    assert d.betas.dtype == np.float64
    for name in ("betas", "posterior_variance", "posterior_log_variance_clipped"):
        want = np.array(ref[name], dtype=np.float64)
        assert want.shape == (1000,)
        np.testing.assert_allclose(getattr(d, name), want, rtol=0, atol=1e-12, err_msg=name)
    for name in set(ref) - {"betas", "posterior_variance", "posterior_log_variance_clipped"}:
        if hasattr(d, name):
            np.testing.assert_allclose(getattr(d, name), np.array(ref[name]), rtol=0, atol=1e-12, err_msg=name)


def test_posterior_coefficients_are_consistent():
    d = GaussianDiffusion.from_official(1000, "cosine")
    # q(x_{t-1}|x_t,x_0) must reproduce x_0 exactly when x_t is its noiseless image.
    ab, abp = d.alphas_cumprod, d.alphas_cumprod_prev
    np.testing.assert_allclose(d.posterior_mean_coef1 + d.posterior_mean_coef2 * np.sqrt(ab), np.sqrt(abp), atol=1e-12)


@pytest.mark.parametrize("spec", ["100", "10,20,70", "ddim50", "ddim25", "250", [5, 5]])
def test_respaced_alphas_cumprod_equal_full_at_kept_steps(spec):
    full = GaussianDiffusion.from_official(1000, "linear")
    sub = GaussianDiffusion.from_official(1000, "linear", timestep_respacing=spec)
    assert sub.num_timesteps == len(sub.timestep_map)
    np.testing.assert_allclose(sub.alphas_cumprod, full.alphas_cumprod[sub.timestep_map], rtol=1e-12, atol=0)
    # and the respace() method gives the same process
    np.testing.assert_array_equal(full.respace(spec).betas, sub.betas)


def test_space_timesteps_matches_official_selection():
    # ddimN: the integer stride giving exactly N steps.
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    # sections of 1000/3 = 334, 333, 333 steps, evenly strided with rounding.
    steps = space_timesteps(1000, "10,20,70")
    assert len(steps) == 100 and steps[:3] == [0, 37, 74] and steps[9] == 333
    assert steps[10] == 334 and steps[29] == 666 and steps[-1] == 999
    assert space_timesteps(1000, "100")[:3] == [0, 10, 20] and space_timesteps(1000, "100")[-1] == 999
    assert space_timesteps(10, "") == list(range(10))
    with pytest.raises(ValueError, match="cannot divide"):
        space_timesteps(10, "20")
    with pytest.raises(ValueError, match="not understood"):
        space_timesteps(1000, "fast")


def test_unknown_schedule():
    with pytest.raises(ValueError, match="expected 'linear' or 'cosine'"):
        GaussianDiffusion.from_official(1000, "quadratic")
