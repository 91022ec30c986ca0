"""The Gaussian diffusion process (Ho et al. 2020; Nichol & Dhariwal 2021), model-agnostic.

The process never owns the network: every method takes `model` and passes
`model_kwargs` to it (`{"rep": h}` for RCDM). Quantities are kept in float64 numpy, as in
the official code, and gathered per timestep into the input's dtype.

A respaced process (timestep_respacing) keeps a subset of the 1000 original steps; its
methods take indices into the kept steps and the model is called with the original
timestep values `timestep_map[t]`.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from rcdm_lib.diffusion.losses import discretized_gaussian_log_likelihood, normal_kl
from rcdm_lib.diffusion.respace import respaced_betas, space_timesteps
from rcdm_lib.diffusion.samplers import SamplersMixin
from rcdm_lib.diffusion.schedules import get_named_beta_schedule

MODEL_VAR_TYPES = ("learned_range", "fixed_small", "fixed_large")


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over all non-batch dimensions: [N, ...] -> [N]."""
    return x.mean(dim=list(range(1, x.dim())))


class GaussianDiffusion(SamplersMixin):
    """The forward process q and the model's reverse process p, for epsilon prediction.

    betas: float64 [T]; model_var_type: "learned_range" (6-channel model output, as the
    official checkpoints), "fixed_small" (posterior variance) or "fixed_large" (betas).
    timestep_map: original timestep of each kept step (identity for a full process).
    """

    def __init__(self, betas, model_var_type: str = "learned_range", timestep_map=None,
                 original_num_steps: int | None = None):
        if model_var_type not in MODEL_VAR_TYPES:
            raise ValueError(f"model_var_type {model_var_type!r} unknown; expected one of {MODEL_VAR_TYPES}")
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0).all() and (betas <= 1).all()):
            raise ValueError("betas must be a 1-D array with values in (0, 1]")
        self.model_var_type = model_var_type
        self.betas = betas
        self.num_timesteps = T = len(betas)
        self.timestep_map = np.arange(T, dtype=np.int64) if timestep_map is None else np.asarray(timestep_map)
        self.original_num_steps = original_num_steps or T

        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas, axis=0)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        # q(x_{t-1} | x_t, x_0)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # log of the variance clipped: it is 0 at t = 0.
        self.posterior_log_variance_clipped = np.log(np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)
        self.one_minus_alphas_cumprod = 1.0 - self.alphas_cumprod
        self.log_betas = np.log(betas)
        # "fixed_large": the betas, with the posterior variance at t = 0
        self.fixed_large_variance = np.append(self.posterior_variance[1], betas[1:])
        self.fixed_large_log_variance = np.log(self.fixed_large_variance)
        self._device_tables: dict[tuple[str, torch.device], torch.Tensor] = {}

    def _table(self, name: str, device: torch.device) -> torch.Tensor:
        """The float64 [T] table `name` on `device`, copied there once: a copy per call from host memory
        would make every training or sampling step wait for the GPU."""
        key = (name, device)
        if key not in self._device_tables:
            self._device_tables[key] = torch.from_numpy(getattr(self, name)).to(device)
        return self._device_tables[key]

    def _extract(self, name: str, t: torch.Tensor, shape, dtype=None) -> torch.Tensor:
        """Table `name` at t, as a tensor broadcastable to `shape` ([N, 1, 1, 1] for images)."""
        out = self._table(name, t.device)[t].to(dtype or torch.float32)
        return out.reshape(out.shape + (1,) * (len(shape) - 1))

    @classmethod
    def from_official(cls, steps: int = 1000, noise_schedule: str = "linear", learn_sigma: bool = True,
                      sigma_small: bool = False, timestep_respacing="") -> "GaussianDiffusion":
        """The process of the official `create_gaussian_diffusion` (epsilon prediction)."""
        betas = get_named_beta_schedule(noise_schedule, steps)
        var_type = "learned_range" if learn_sigma else ("fixed_small" if sigma_small else "fixed_large")
        use = space_timesteps(steps, timestep_respacing)
        if len(use) == steps:
            return cls(betas, var_type, original_num_steps=steps)
        base_alphas_cumprod = np.cumprod(1.0 - betas)
        new_betas, timestep_map = respaced_betas(base_alphas_cumprod, use)
        return cls(new_betas, var_type, timestep_map=timestep_map, original_num_steps=steps)

    def respace(self, timestep_respacing) -> "GaussianDiffusion":
        """The same process with fewer steps (only valid on a full, unrespaced process)."""
        if len(self.timestep_map) != self.original_num_steps or (self.timestep_map != np.arange(self.num_timesteps)).any():
            raise ValueError("respace() needs the full process; build it with from_official(timestep_respacing=...)")
        use = space_timesteps(self.num_timesteps, timestep_respacing)
        new_betas, timestep_map = respaced_betas(self.alphas_cumprod, use)
        return GaussianDiffusion(new_betas, self.model_var_type, timestep_map=timestep_map,
                                 original_num_steps=self.num_timesteps)

    # --- forward process -----------------------------------------------------------------
    def q_mean_variance(self, x_start, t):
        """Mean, variance and log variance of q(x_t | x_0)."""
        mean = self._extract("sqrt_alphas_cumprod", t, x_start.shape, x_start.dtype) * x_start
        variance = self._extract("one_minus_alphas_cumprod", t, x_start.shape, x_start.dtype)
        log_variance = self._extract("log_one_minus_alphas_cumprod", t, x_start.shape, x_start.dtype)
        return mean, variance, log_variance

    def q_sample(self, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Sample x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I). x_start [N, C, H, W], t [N]."""
        if noise is None:
            noise = torch.randn_like(x_start)
        if noise.shape != x_start.shape:
            raise ValueError(f"noise shape {list(noise.shape)} differs from x_start shape {list(x_start.shape)}")
        return (self._extract("sqrt_alphas_cumprod", t, x_start.shape, x_start.dtype) * x_start
                + self._extract("sqrt_one_minus_alphas_cumprod", t, x_start.shape, x_start.dtype) * noise)

    def q_posterior_mean_variance(self, x_start, x_t, t):
        """Mean, variance and clipped log variance of q(x_{t-1} | x_t, x_0)."""
        shape, dt = x_t.shape, x_t.dtype
        mean = (self._extract("posterior_mean_coef1", t, shape, dt) * x_start
                + self._extract("posterior_mean_coef2", t, shape, dt) * x_t)
        return (mean, self._extract("posterior_variance", t, shape, dt),
                self._extract("posterior_log_variance_clipped", t, shape, dt))

    def _predict_xstart_from_eps(self, x_t, t, eps):
        return (self._extract("sqrt_recip_alphas_cumprod", t, x_t.shape, x_t.dtype) * x_t
                - self._extract("sqrt_recipm1_alphas_cumprod", t, x_t.shape, x_t.dtype) * eps)

    def _predict_eps_from_xstart(self, x_t, t, pred_xstart):
        return ((self._extract("sqrt_recip_alphas_cumprod", t, x_t.shape, x_t.dtype) * x_t - pred_xstart)
                / self._extract("sqrt_recipm1_alphas_cumprod", t, x_t.shape, x_t.dtype))

    # --- the model -------------------------------------------------------------------------
    def model_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        """Original timestep values the network is called with, for indices t into the kept steps."""
        return self._table("timestep_map", t.device)[t]

    def p_mean_variance(self, model: Callable, x_t: torch.Tensor, t: torch.Tensor, clip_denoised: bool = True,
                        model_kwargs: dict | None = None, denoised_fn: Callable | None = None,
                        model_output: torch.Tensor | None = None) -> dict:
        """p(x_{t-1} | x_t): {"mean", "variance", "log_variance", "pred_xstart"}, each like x_t [N, C, H, W].

        `model_output` may be given to reuse an evaluation (the training loss does).
        """
        C = x_t.shape[1]
        if model_output is None:
            model_output = model(x_t, self.model_timesteps(t), **(model_kwargs or {}))
        if self.model_var_type == "learned_range":
            if model_output.shape[1] != 2 * C:
                raise ValueError(
                    f"a learned-variance process expects the model to output {2 * C} channels "
                    f"(epsilon and variance), got {model_output.shape[1]}"
                )
            eps, var_values = torch.split(model_output, C, dim=1)
            min_log = self._extract("posterior_log_variance_clipped", t, x_t.shape, x_t.dtype)
            max_log = self._extract("log_betas", t, x_t.shape, x_t.dtype)
            frac = (var_values + 1) / 2  # model outputs [-1, 1] -> interpolation weight
            log_variance = frac * max_log + (1 - frac) * min_log
            variance = torch.exp(log_variance)
        else:
            if model_output.shape[1] != C:
                raise ValueError(
                    f"a fixed-variance process expects the model to output {C} channels, got {model_output.shape[1]}"
                )
            eps = model_output
            if self.model_var_type == "fixed_large":
                variance = self._extract("fixed_large_variance", t, x_t.shape, x_t.dtype)
                log_variance = self._extract("fixed_large_log_variance", t, x_t.shape, x_t.dtype)
            else:
                variance = self._extract("posterior_variance", t, x_t.shape, x_t.dtype)
                log_variance = self._extract("posterior_log_variance_clipped", t, x_t.shape, x_t.dtype)
        pred_xstart = self._predict_xstart_from_eps(x_t, t, eps)
        if denoised_fn is not None:
            pred_xstart = denoised_fn(pred_xstart)
        if clip_denoised:
            pred_xstart = pred_xstart.clamp(-1, 1)
        mean, _, _ = self.q_posterior_mean_variance(pred_xstart, x_t, t)
        return {"mean": mean, "variance": variance, "log_variance": log_variance,
                "pred_xstart": pred_xstart, "eps": eps}

    # --- training --------------------------------------------------------------------------
    def sample_timesteps(self, n: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform timestep indices [N]."""
        return torch.randint(0, self.num_timesteps, (n,), device=device, generator=generator)

    def _vb_terms_bpd(self, x_start, x_t, t, out: dict) -> torch.Tensor:
        """Per-example VB term in bits/dim: KL(q(x_{t-1}|x_t,x_0) || p) for t > 0, decoder NLL at t = 0."""
        true_mean, _, true_log_var = self.q_posterior_mean_variance(x_start, x_t, t)
        kl = mean_flat(normal_kl(true_mean, true_log_var, out["mean"], out["log_variance"])) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x_start, means=out["mean"], log_scales=0.5 * out["log_variance"])
        nll = mean_flat(nll) / math.log(2.0)
        return torch.where(t == 0, nll, kl)

    def training_losses(self, model: Callable, x_start: torch.Tensor, t: torch.Tensor,
                        model_kwargs: dict | None = None, noise: torch.Tensor | None = None) -> dict:
        """Per-example losses [N]: "mse" on epsilon, "vb" (learned variance only) and "loss".

        The VB term trains only the variance (stop-gradient on the mean) and is scaled by
        num_timesteps / 1000, the hybrid objective of improved DDPM / ADM.
        """
        if noise is None:
            noise = torch.randn_like(x_start)
        x_t = self.q_sample(x_start, t, noise=noise)
        model_output = model(x_t, self.model_timesteps(t), **(model_kwargs or {}))
        # the losses in at least fp32 whatever precision the network ran in (bf16 autocast); fp64 stays fp64
        model_output = model_output.to(torch.promote_types(model_output.dtype, torch.float32))
        C = x_start.shape[1]
        terms = {}
        if self.model_var_type == "learned_range":
            if model_output.shape[1] != 2 * C:
                raise ValueError(
                    f"a learned-variance process expects {2 * C} output channels, got {model_output.shape[1]}"
                )
            eps, var_values = torch.split(model_output, C, dim=1)
            frozen = torch.cat([eps.detach(), var_values], dim=1)
            out = self.p_mean_variance(None, x_t, t, clip_denoised=False, model_output=frozen)
            terms["vb"] = self._vb_terms_bpd(x_start, x_t, t, out) * (self.num_timesteps / 1000.0)
        else:
            eps = model_output
        if eps.shape != noise.shape:
            raise ValueError(f"model epsilon shape {list(eps.shape)} differs from the image shape {list(noise.shape)}")
        terms["mse"] = mean_flat((noise - eps) ** 2)
        terms["loss"] = terms["mse"] + terms["vb"] if "vb" in terms else terms["mse"]
        return terms
