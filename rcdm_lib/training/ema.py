"""Exponential moving average of model weights."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMA:
    """ema <- rate * ema + (1 - rate) * weights after each optimizer step."""

    def __init__(self, model: nn.Module, rate: float):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"EMA rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        # one multi-tensor kernel on CUDA instead of one launch per parameter (same values)
        ema_params = list(self.model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach().to(e.dtype) for e, p in zip(ema_params, model.parameters())],
                             1.0 - self.rate)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, sd) -> None:
        self.model.load_state_dict(sd)
