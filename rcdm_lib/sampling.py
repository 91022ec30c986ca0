"""Sampling RCDM for given representations: the calls behind every figure."""
from __future__ import annotations

import torch

from rcdm_lib.diffusion import GaussianDiffusion
from rcdm_lib.unet import UNet


@torch.no_grad()
def sample_from_reps(model: UNet, diffusion: GaussianDiffusion, rep: torch.Tensor, n_per: int = 1,
                     noise: torch.Tensor | None = None, seed: int | None = 0, sampler: str = "ddim",
                     eta: float = 0.0, guidance_scale: float | None = None, batch_size: int = 256,
                     progress: bool = False) -> torch.Tensor:
    """Samples for each conditioning vector: rep [N, D] -> images [N, n_per, C, H, W] in [-1, 1].

    noise: optional fixed initial noise [N, n_per, C, H, W] (or [n_per, C, H, W], shared by
    every representation, as the paper's "same noise" rows). seed makes the noise and the
    ancestral steps reproducible; sampler is "ddim" (eta) or "ancestral".
    """
    cfg = model.config
    if cfg.rep_dim is None:
        raise ValueError("this UNet is unconditional; use sample_unconditional")
    if rep.dim() != 2 or rep.shape[1] != cfg.rep_dim:
        raise ValueError(f"rep must be [N, {cfg.rep_dim}], got {list(rep.shape)}")
    if sampler not in ("ddim", "ancestral"):
        raise ValueError(f"sampler must be 'ddim' or 'ancestral', got {sampler!r}")
    return _draw(model, diffusion, rep, rep.shape[0], n_per, noise, seed, sampler, eta, guidance_scale, batch_size,
                 progress)


@torch.no_grad()
def sample_unconditional(model: UNet, diffusion: GaussianDiffusion, n: int, n_per: int = 1,
                         noise: torch.Tensor | None = None, seed: int | None = 0, sampler: str = "ancestral",
                         eta: float = 0.0, batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """Samples of an unconditional UNet (an ADM without `ssl_emb`): images [n, n_per, C, H, W] in [-1, 1], with the
    noise and steps of sample_from_reps for the same seed."""
    if model.config.rep_dim is not None:
        raise ValueError(f"this UNet is conditioned on {model.config.rep_dim}-d representations; use sample_from_reps")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if sampler not in ("ddim", "ancestral"):
        raise ValueError(f"sampler must be 'ddim' or 'ancestral', got {sampler!r}")
    return _draw(model, diffusion, None, n, n_per, noise, seed, sampler, eta, None, batch_size, progress)


def _draw(model, diffusion, rep, n, n_per, noise, seed, sampler, eta, guidance_scale, batch_size, progress):
    """The reverse process for n conditions (rep [n, D], or None for an unconditional model), n_per each."""
    cfg = model.config
    device = next(model.parameters()).device
    shape = (n, n_per, cfg.in_channels, cfg.image_size, cfg.image_size)
    gen = torch.Generator(device="cpu").manual_seed(seed) if seed is not None else None
    if noise is None:
        noise = torch.randn(shape, generator=gen)
    elif noise.dim() == 4:
        noise = noise.unsqueeze(0).expand(shape)
    if tuple(noise.shape) != shape:
        raise ValueError(f"noise must be {list(shape)} or {list(shape[1:])}, got {list(noise.shape)}")
    flat_rep = rep.repeat_interleave(n_per, dim=0) if rep is not None else None
    flat_noise = noise.reshape(n * n_per, *shape[2:])
    step_gen = torch.Generator(device=device).manual_seed(seed + 1) if seed is not None else None
    out = [torch.zeros(0, *shape[2:])]
    for s in range(0, n * n_per, batch_size):
        kw = {"rep": flat_rep[s:s + batch_size].to(device)} if flat_rep is not None else {}
        x_T = flat_noise[s:s + batch_size].to(device)
        if sampler == "ddim":
            x = diffusion.ddim_sample_loop(model, x_T.shape, noise=x_T, eta=eta, model_kwargs=kw,
                                           guidance_scale=guidance_scale, progress=progress, generator=step_gen)
        else:
            x = diffusion.p_sample_loop(model, x_T.shape, noise=x_T, model_kwargs=kw, generator=step_gen,
                                        guidance_scale=guidance_scale, progress=progress)
        out.append(x.cpu())
    return torch.cat(out).reshape(shape)
