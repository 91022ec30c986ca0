"""Samplers of the reverse process: ancestral (DDPM) and DDIM, with classifier-free guidance.

Mixed into GaussianDiffusion; each method takes the model as an argument.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch

from rcdm_lib.diffusion.guidance import classifier_free_guidance


def _check_finite(name: str, x: torch.Tensor) -> None:
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise ValueError(f"{name} has {bad} non-finite values (NaN or inf); expected finite numbers")


def _check_inputs(noise, model_kwargs, shape) -> None:
    if noise is not None:
        if tuple(noise.shape) != tuple(shape):
            raise ValueError(f"noise must have the sample shape {list(shape)}, got {list(noise.shape)}")
        _check_finite("initial noise", noise)
    for k, v in (model_kwargs or {}).items():
        if torch.is_tensor(v) and v.is_floating_point():
            _check_finite(f"model_kwargs[{k!r}]", v)


class SamplersMixin:
    def _guided(self, model, guidance_scale, model_kwargs):
        if guidance_scale is None or guidance_scale == 1.0:
            return model
        if not model_kwargs or "rep" not in model_kwargs:
            raise ValueError("classifier-free guidance needs model_kwargs={'rep': h} (the null condition is zeros)")
        return classifier_free_guidance(model, guidance_scale)

    def p_sample(self, model, x_t, t, clip_denoised=True, model_kwargs=None, generator=None, denoised_fn=None) -> dict:
        """One ancestral step x_t -> x_{t-1}: {"sample", "pred_xstart"}."""
        out = self.p_mean_variance(model, x_t, t, clip_denoised=clip_denoised, model_kwargs=model_kwargs,
                                   denoised_fn=denoised_fn)
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        nonzero = (t != 0).to(x_t.dtype).reshape(-1, *([1] * (x_t.dim() - 1)))  # no noise at t = 0
        sample = out["mean"] + nonzero * torch.exp(0.5 * out["log_variance"]) * noise
        return {"sample": sample, "pred_xstart": out["pred_xstart"]}

    def ddim_sample(self, model, x_t, t, eta=0.0, clip_denoised=True, model_kwargs=None, generator=None,
                    denoised_fn=None) -> dict:
        """One DDIM step (Song et al. 2021, eq. 12): {"sample", "pred_xstart"}."""
        out = self.p_mean_variance(model, x_t, t, clip_denoised=clip_denoised, model_kwargs=model_kwargs,
                                   denoised_fn=denoised_fn)
        eps = self._predict_eps_from_xstart(x_t, t, out["pred_xstart"])
        ab = self._extract("alphas_cumprod", t, x_t.shape, x_t.dtype)            # [N, 1, 1, 1]
        ab_prev = self._extract("alphas_cumprod_prev", t, x_t.shape, x_t.dtype)
        view = (-1,) + (1,) * (x_t.dim() - 1)
        sigma = eta * torch.sqrt((1 - ab_prev) / (1 - ab)) * torch.sqrt(1 - ab / ab_prev)
        mean = out["pred_xstart"] * torch.sqrt(ab_prev) + torch.sqrt(1 - ab_prev - sigma**2) * eps
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        nonzero = (t != 0).to(x_t.dtype).reshape(view)
        return {"sample": mean + nonzero * sigma * noise, "pred_xstart": out["pred_xstart"]}

    def _progressive(self, step_fn, model, shape, noise, model_kwargs, device, generator, progress,
                     guidance_scale, **step_kwargs) -> Iterator[dict]:
        _check_inputs(noise, model_kwargs, shape)
        model = self._guided(model, guidance_scale, model_kwargs)
        if device is None:
            device = noise.device if noise is not None else next(
                (v.device for v in (model_kwargs or {}).values() if torch.is_tensor(v)), torch.device("cpu"))
        x = noise if noise is not None else torch.randn(*shape, generator=generator, device=device)
        indices = range(self.num_timesteps - 1, -1, -1)
        if progress:
            from tqdm.auto import tqdm

            indices = tqdm(indices, desc="sampling", unit="step")
        for i in indices:
            t = torch.full((shape[0],), i, device=x.device, dtype=torch.long)
            with torch.no_grad():
                out = step_fn(model, x, t, model_kwargs=model_kwargs, generator=generator, **step_kwargs)
            if not torch.isfinite(out["sample"]).all():
                raise ValueError(
                    f"sampling produced non-finite values at step index {i} (timestep {int(self.timestep_map[i])}); "
                    "check the model and its inputs"
                )
            out["t"] = i
            yield out
            x = out["sample"]

    def p_sample_loop_progressive(self, model, shape, noise=None, clip_denoised=True, model_kwargs=None,
                                  device=None, generator=None, progress=False, guidance_scale=None,
                                  denoised_fn=None) -> Iterator[dict]:
        """Yield {"sample", "pred_xstart", "t"} at every ancestral step, from t = T-1 down to 0."""
        yield from self._progressive(self.p_sample, model, shape, noise, model_kwargs, device, generator, progress,
                                     guidance_scale, clip_denoised=clip_denoised, denoised_fn=denoised_fn)

    def ddim_sample_loop_progressive(self, model, shape, noise=None, eta=0.0, clip_denoised=True,
                                     model_kwargs=None, device=None, generator=None, progress=False,
                                     guidance_scale=None, denoised_fn=None) -> Iterator[dict]:
        """Yield {"sample", "pred_xstart", "t"} at every DDIM step."""
        yield from self._progressive(self.ddim_sample, model, shape, noise, model_kwargs, device, generator,
                                     progress, guidance_scale, eta=eta, clip_denoised=clip_denoised,
                                     denoised_fn=denoised_fn)

    @staticmethod
    def _collect(steps: Iterator[dict], return_intermediates: bool):
        final, preds = None, []
        for out in steps:
            final = out
            if return_intermediates:
                preds.append(out["pred_xstart"])
        if return_intermediates:
            return {"sample": final["sample"], "pred_xstart": preds}
        return final["sample"]

    def p_sample_loop(self, model: Callable, shape, noise=None, clip_denoised=True, model_kwargs=None,
                      device=None, generator=None, progress=False, guidance_scale=None,
                      return_intermediates=False, denoised_fn=None):
        """Ancestral sampling from x_T ~ N(0, I) (or `noise`) to x_0 [N, C, H, W].

        guidance_scale s: classifier-free guidance eps_null + s (eps_rep - eps_null) with the
        null condition zeros (slot models). return_intermediates: also the x_0 prediction of
        every step, as {"sample", "pred_xstart": [T tensors]}.
        """
        return self._collect(self.p_sample_loop_progressive(
            model, shape, noise=noise, clip_denoised=clip_denoised, model_kwargs=model_kwargs, device=device,
            generator=generator, progress=progress, guidance_scale=guidance_scale, denoised_fn=denoised_fn,
        ), return_intermediates)

    def ddim_sample_loop(self, model: Callable, shape, noise=None, eta=0.0, clip_denoised=True, model_kwargs=None,
                         device=None, generator=None, progress=False, guidance_scale=None,
                         return_intermediates=False, denoised_fn=None):
        """DDIM sampling over this process's steps (respace with "ddimN" for N steps)."""
        return self._collect(self.ddim_sample_loop_progressive(
            model, shape, noise=noise, eta=eta, clip_denoised=clip_denoised, model_kwargs=model_kwargs,
            device=device, generator=generator, progress=progress, guidance_scale=guidance_scale,
            denoised_fn=denoised_fn,
        ), return_intermediates)
