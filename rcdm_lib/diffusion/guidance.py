"""Classifier-free guidance (Ho & Salimans 2022) for slot models whose null condition is zeros."""
from __future__ import annotations

import torch


def classifier_free_guidance(model, scale: float):
    """Wrap `model(x, t, rep=h)` so its epsilon is eps(null) + scale * (eps(h) - eps(null)).

    The null condition is the all-zero representation. A learned variance (extra output
    channels) is taken from the conditional evaluation. scale = 1 is the plain model.
    """

    def guided(x, t, rep, **kwargs):
        both = model(torch.cat([x, x]), torch.cat([t, t]), rep=torch.cat([rep, torch.zeros_like(rep)]), **kwargs)
        cond, null = both.chunk(2)
        C = x.shape[1]
        eps = null[:, :C] + scale * (cond[:, :C] - null[:, :C])
        return torch.cat([eps, cond[:, C:]], dim=1)

    return guided
