"""Timestep respacing of a diffusion process (the official `space_timesteps`)."""
from __future__ import annotations

import numpy as np


def space_timesteps(num_timesteps: int, section_counts) -> list[int]:
    """Timesteps to keep from a `num_timesteps`-step process, sorted.

    section_counts: "" (keep all), "100", "10,20,70" (the process split into equal
    sections, each evenly strided with that many steps), "ddimN" (the integer stride that
    gives exactly N steps, as DDIM), or a list of ints.
    """
    if section_counts in (None, "", [], ()):
        return list(range(num_timesteps))
    if isinstance(section_counts, int):
        section_counts = [section_counts]
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            desired = int(section_counts[len("ddim"):])
            for stride in range(1, num_timesteps):
                if len(range(0, num_timesteps, stride)) == desired:
                    return list(range(0, num_timesteps, stride))
            raise ValueError(f"cannot take exactly {desired} steps of {num_timesteps} with an integer stride")
        try:
            section_counts = [int(x) for x in section_counts.split(",")]
        except ValueError:
            raise ValueError(
                f"timestep_respacing {section_counts!r} is not understood; expected e.g. '100', '10,20,70' or 'ddim50'"
            ) from None
    size_per = num_timesteps // len(section_counts)
    extra = num_timesteps % len(section_counts)
    start, steps = 0, []
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(f"cannot divide a section of {size} steps into {count}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += stride
        start += size
    return sorted(set(steps))


def respaced_betas(alphas_cumprod: np.ndarray, use_timesteps) -> tuple[np.ndarray, np.ndarray]:
    """Betas of the process that keeps only `use_timesteps`, and the kept original timesteps.

    The new process has alphas_cumprod equal to the original's at the kept steps.
    """
    keep = set(int(t) for t in use_timesteps)
    last, betas, timestep_map = 1.0, [], []
    for i, ac in enumerate(alphas_cumprod):
        if i in keep:
            betas.append(1 - ac / last)
            last = ac
            timestep_map.append(i)
    return np.array(betas, dtype=np.float64), np.array(timestep_map, dtype=np.int64)
