"""Super-resolving images with a super-resolution diffusion model (the usual samplers, low_res in model_kwargs)."""
from __future__ import annotations

import torch

from rcdm_lib.diffusion import GaussianDiffusion
from rcdm_lib.superres.model import SuperResUNet


@torch.no_grad()
def super_resolve(model: SuperResUNet, diffusion: GaussianDiffusion, low_res: torch.Tensor,
                  rep: torch.Tensor | None = None, noise: torch.Tensor | None = None, seed: int | None = 0,
                  sampler: str = "ancestral", eta: float = 0.0, batch_size: int = 64,
                  progress: bool = False) -> torch.Tensor:
    """Samples of the high-res image given the low-res one: low_res [N, C, s, s] -> [N, C, L, L] in [-1, 1].

    rep: [N, D] for a conditioned upsampler (one-hot ImageNet classes for the official ones).
    noise: optional initial noise [N, C, L, L]; seed makes noise and ancestral steps reproducible.
    """
    cfg = model.config
    c, size = cfg.image_channels, cfg.image_size
    if low_res.dim() != 4 or tuple(low_res.shape[1:]) != (c, cfg.small_size, cfg.small_size):
        raise ValueError(f"low_res must be [N, {c}, {cfg.small_size}, {cfg.small_size}] (this model upsamples "
                         f"{cfg.small_size} -> {size}), got {list(low_res.shape)}")
    if sampler not in ("ddim", "ancestral"):
        raise ValueError(f"sampler must be 'ddim' or 'ancestral', got {sampler!r}")
    if rep is not None and rep.shape[0] != low_res.shape[0]:
        raise ValueError(f"rep must have one row per low-res image ({low_res.shape[0]}), got {list(rep.shape)}")
    n = low_res.shape[0]
    shape = (n, c, size, size)
    gen = torch.Generator(device="cpu").manual_seed(seed) if seed is not None else None
    if noise is None:
        noise = torch.randn(shape, generator=gen)
    if tuple(noise.shape) != shape:
        raise ValueError(f"noise must be {list(shape)}, got {list(noise.shape)}")
    device = next(model.parameters()).device
    step_gen = torch.Generator(device=device).manual_seed(seed + 1) if seed is not None else None
    out = []
    for s in range(0, n, batch_size):
        kw = {"low_res": low_res[s:s + batch_size].float().to(device)}
        if rep is not None:
            kw["rep"] = rep[s:s + batch_size].float().to(device)
        x_T = noise[s:s + batch_size].to(device)
        if sampler == "ddim":
            x = diffusion.ddim_sample_loop(model, x_T.shape, noise=x_T, eta=eta, model_kwargs=kw,
                                           generator=step_gen, progress=progress)
        else:
            x = diffusion.p_sample_loop(model, x_T.shape, noise=x_T, model_kwargs=kw, generator=step_gen,
                                        progress=progress)
        out.append(x.cpu())
    return torch.cat(out)
