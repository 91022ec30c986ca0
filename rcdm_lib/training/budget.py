"""A training run that fits a wall-clock budget: how many steps, and the learning-rate schedule of a shortened run.

`scripts/train.py --time-budget S` times a few real training steps on this machine, then trains
`budget_steps(...)` steps with `budgeted_config(...)`'s schedule. The choice is made once, at the start of a
fresh run, and saved in the run's config, so the run itself stays deterministic and `--resume` continues it
with the same steps and schedule. This is how `make book FROM_SCRATCH=1` keeps to its 2-hour budget on a
2-core CPU whose speed varies from day to day: a slow day trains a shorter RCDM instead of a longer book.
"""
from __future__ import annotations

import dataclasses
import math

from .config import TrainConfig

# the falling-rate recipe of a shortened run (measured on the tiny profile, benchmarks/cpu_2026-11-28_rcdm_10k.md:
# 10000 steps, the rate constant for the first 30%, then a cosine down to a tenth, scored on average like 14000
# steps at the constant rate)
DECAY_START_FRACTION = 0.3
FINAL_LR_FRACTION = 0.1


def budget_steps(seconds_left: float, step_seconds: float, full_steps: int, min_steps: int) -> int:
    """The steps that fit in `seconds_left` at `step_seconds` each: at most `full_steps` (the recipe's), at
    least `min_steps` (below it a model is not worth training; the budget is then overrun)."""
    if step_seconds <= 0 or not math.isfinite(step_seconds):
        raise ValueError(f"step_seconds must be a positive number, got {step_seconds}")
    if not 1 <= min_steps <= full_steps:
        raise ValueError(f"need 1 <= min_steps <= full_steps, got min_steps {min_steps}, full_steps {full_steps}")
    fit = math.floor(max(seconds_left, 0.0) / step_seconds)
    return max(min_steps, min(full_steps, fit))


def budgeted_config(cfg: TrainConfig, steps: int) -> TrainConfig:
    """`cfg` shortened to `steps`. Unchanged when steps >= cfg.steps. Otherwise a schedule that ends where a
    full run ends: a decaying recipe has its decay window scaled to the new length; a constant rate gets the
    measured falling-rate recipe (constant for 30% of the steps, then a cosine to a tenth of the rate at the
    last step). The warm-up is kept, at most a tenth of the run."""
    if steps >= cfg.steps:
        return cfg
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    scale = steps / cfg.steps
    if cfg.lr_final is not None:
        start = round(cfg.lr_decay_start * scale)
        end = max(start + 1, round(cfg.lr_decay_end * scale))
        lr_final = cfg.lr_final
    else:
        start = round(DECAY_START_FRACTION * steps)
        end = max(start + 1, steps)
        lr_final = cfg.lr * FINAL_LR_FRACTION
    return dataclasses.replace(cfg, steps=steps, lr_final=lr_final, lr_decay_start=start, lr_decay_end=end,
                               warmup_steps=min(cfg.warmup_steps, steps // 10))


def min_budget_steps(full_steps: int) -> int:
    """The fewest steps a budgeted run trains: a tenth of the recipe (at least 1)."""
    return max(1, full_steps // 10)


def scaled_steps(seconds_left: float, step_seconds: dict[str, float], full_steps: dict[str, int]) -> dict[str, int]:
    """Steps for several runs made one after the other in `seconds_left` (the encoders of one process):
    every recipe shortened by the same factor, so that sum(steps[k] * step_seconds[k]) fits; none longer
    than its recipe, none shorter than min_budget_steps of it (the budget is then overrun)."""
    if set(step_seconds) != set(full_steps):
        raise ValueError(f"step_seconds and full_steps name other runs: {sorted(step_seconds)} vs {sorted(full_steps)}")
    bad = {k: s for k, s in step_seconds.items() if not (s > 0 and math.isfinite(s))}
    if bad:
        raise ValueError(f"step_seconds must be positive numbers, got {bad}")
    full_s = sum(full_steps[k] * step_seconds[k] for k in full_steps)
    factor = min(1.0, max(seconds_left, 0.0) / full_s) if full_s > 0 else 1.0
    return {k: max(min_budget_steps(n), min(n, math.floor(factor * n))) for k, n in full_steps.items()}
