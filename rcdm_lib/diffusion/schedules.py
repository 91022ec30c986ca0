"""Beta schedules, in float64 (numpy) as the official code computes them."""
from __future__ import annotations

import math

import numpy as np


def betas_for_alpha_bar(num_diffusion_timesteps: int, alpha_bar, max_beta: float = 0.999) -> np.ndarray:
    """Betas that discretise a cumulative alpha_bar(t) for t in [0, 1]."""
    betas = []
    for i in range(num_diffusion_timesteps):
        t1 = i / num_diffusion_timesteps
        t2 = (i + 1) / num_diffusion_timesteps
        betas.append(min(1 - alpha_bar(t2) / alpha_bar(t1), max_beta))
    return np.array(betas, dtype=np.float64)


def get_named_beta_schedule(name: str, num_diffusion_timesteps: int) -> np.ndarray:
    """`linear` (Ho et al. 2020, scaled to any step count) or `cosine` (Nichol & Dhariwal 2021)."""
    if name == "linear":
        # Scale so that 1000 steps give the original 1e-4 .. 0.02.
        scale = 1000 / num_diffusion_timesteps
        return np.linspace(scale * 0.0001, scale * 0.02, num_diffusion_timesteps, dtype=np.float64)
    if name == "cosine":
        return betas_for_alpha_bar(
            num_diffusion_timesteps, lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        )
    raise ValueError(f"unknown noise schedule {name!r}; expected 'linear' or 'cosine'")
