"""Sampler behaviour: reproducibility, intermediates, guidance, bad input."""
import pytest
import torch

from rcdm_lib.diffusion import GaussianDiffusion, classifier_free_guidance


@pytest.fixture(scope="module")
def setup(random_unet):
    model = random_unet(rep_dim=5)
    d = GaussianDiffusion.from_official(1000, "linear", learn_sigma=True, timestep_respacing="10")
    return model, d


def test_generator_makes_sampling_reproducible(setup):
    model, d = setup
    rep = torch.randn(2, 5)
    a = d.p_sample_loop(model, (2, 3, 8, 8), model_kwargs={"rep": rep}, generator=torch.Generator().manual_seed(3))
    b = d.p_sample_loop(model, (2, 3, 8, 8), model_kwargs={"rep": rep}, generator=torch.Generator().manual_seed(3))
    c = d.p_sample_loop(model, (2, 3, 8, 8), model_kwargs={"rep": rep}, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the last ancestral step returns the clipped x0 prediction (posterior coef2 is 0 at t = 0)
    assert torch.isfinite(a).all() and a.abs().max() <= 1.0 + 1e-6


def test_ddim_eta0_is_deterministic_given_noise_and_returns_intermediates(setup):
    model, d = setup
    noise, rep = torch.randn(2, 3, 8, 8), torch.randn(2, 5)
    out = d.ddim_sample_loop(model, noise.shape, noise=noise, model_kwargs={"rep": rep}, return_intermediates=True)
    again = d.ddim_sample_loop(model, noise.shape, noise=noise, model_kwargs={"rep": rep},
                               generator=torch.Generator().manual_seed(9))
    assert torch.equal(out["sample"], again)
    assert len(out["pred_xstart"]) == d.num_timesteps
    # the last step of DDIM returns its x0 prediction
    assert torch.allclose(out["pred_xstart"][-1], out["sample"])


def test_ddim_step_matches_formula(setup):
    model, d = setup
    x, t, rep = torch.randn(2, 3, 8, 8), torch.tensor([5, 5]), torch.randn(2, 5)
    out = d.ddim_sample(model, x, t, eta=0.0, model_kwargs={"rep": rep}, clip_denoised=False)
    with torch.no_grad():
        eps = model(x, torch.from_numpy(d.timestep_map)[t], rep=rep)[:, :3]
    ab, abp = float(d.alphas_cumprod[5]), float(d.alphas_cumprod[4])
    x0 = (x - (1 - ab) ** 0.5 * eps) / ab**0.5
    torch.testing.assert_close(out["sample"], abp**0.5 * x0 + (1 - abp) ** 0.5 * eps, rtol=1e-4, atol=1e-5)


def test_classifier_free_guidance(setup):
    model, d = setup
    x, t, rep = torch.randn(2, 3, 8, 8), torch.tensor([100, 900]), torch.randn(2, 5)
    with torch.no_grad():
        cond, null = model(x, t, rep=rep), model(x, t, rep=torch.zeros_like(rep))
        g = classifier_free_guidance(model, 3.0)(x, t, rep=rep)
    torch.testing.assert_close(g[:, :3], null[:, :3] + 3.0 * (cond[:, :3] - null[:, :3]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g[:, 3:], cond[:, 3:])
    plain = d.p_sample_loop(model, (2, 3, 8, 8), model_kwargs={"rep": rep}, generator=torch.Generator().manual_seed(1))
    s1 = d.p_sample_loop(model, (2, 3, 8, 8), model_kwargs={"rep": rep}, generator=torch.Generator().manual_seed(1),
                         guidance_scale=1.0)
    s3 = d.p_sample_loop(model, (2, 3, 8, 8), model_kwargs={"rep": rep}, generator=torch.Generator().manual_seed(1),
                         guidance_scale=3.0)
    assert torch.equal(plain, s1) and not torch.allclose(plain, s3)


def test_nan_input_is_refused(setup):
    model, d = setup
    noise = torch.randn(2, 3, 8, 8)
    noise[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="initial noise has 1 non-finite"):
        d.p_sample_loop(model, noise.shape, noise=noise, model_kwargs={"rep": torch.randn(2, 5)})
    rep = torch.randn(2, 5)
    rep[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"model_kwargs\['rep'\] has 1 non-finite"):
        d.ddim_sample_loop(model, (2, 3, 8, 8), model_kwargs={"rep": rep})
    with pytest.raises(ValueError, match=r"noise must have the sample shape \[2, 3, 8, 8\], got \[2, 3, 4, 4\]"):
        d.ddim_sample_loop(model, (2, 3, 8, 8), noise=torch.randn(2, 3, 4, 4), model_kwargs={"rep": rep})


def test_nan_during_sampling_names_the_step():
    d = GaussianDiffusion.from_official(1000, "linear", learn_sigma=False, timestep_respacing="5")

    def broken(x, t):
        return torch.where(t[:, None, None, None] < 300, torch.full_like(x, float("nan")), torch.zeros_like(x))

    with pytest.raises(ValueError, match="non-finite values at step index 1 "):
        d.p_sample_loop(broken, (1, 3, 4, 4), clip_denoised=False)


def test_progress_bar_can_be_shown(setup, capsys):
    model, d = setup
    d.p_sample_loop(model, (1, 3, 8, 8), model_kwargs={"rep": torch.randn(1, 5)}, progress=True)
    assert "sampling" in capsys.readouterr().err
