"""Conditional samples per representation (paper Fig. 1a, 1b, 12, 13): grids and a faithfulness check."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rcdm_lib.analysis.interpolation import reencode
from rcdm_lib.viz import image_grid


@dataclass
class SlotSamples:
    rows: torch.Tensor  # [N, 1 + n_per, 3, S, S]: the conditioning image (RCDM view), then its samples
    top1: float         # fraction of re-encoded samples nearest (cosine) to their own image's representation
    hits: torch.Tensor  # [N, n_per]: 1 where that sample is nearest to its own image (top1 is their mean)


def samples_per_slot(models, images: torch.Tensor, n_per: int, steps: int, seed: int, size: int) -> dict:
    """For every representation slot of `models`: samples conditioned on each image [N, 3, E, E].

    `size` is the encoder resolution the samples are resized to before re-encoding.
    """
    out = {}
    targets = torch.arange(images.shape[0]).repeat_interleave(n_per)
    for slot in models.slots:
        h = models.encode(slot, images)
        x = models.sample(slot, h, n_per=n_per, steps=steps, seed=seed)  # [N, n_per, 3, S, S]
        sims = F.cosine_similarity(reencode(models, slot, x.flatten(0, 1), size).unsqueeze(1), h.unsqueeze(0), dim=-1)
        hits = (sims.argmax(1) == targets).float().view(images.shape[0], n_per)
        out[slot] = SlotSamples(rows=torch.cat([models.rcdm_view(images).unsqueeze(1), x], dim=1),
                                top1=hits.mean().item(), hits=hits)
    return out


def plot_slot_grids(samples: dict, scale: int, title: str):
    """One panel per slot: rows of [conditioning image | samples], upscaled by nearest neighbour."""
    import matplotlib.pyplot as plt

    n, cols = next(iter(samples.values())).rows.shape[:2]
    fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 3.2 * n / cols + 0.6))
    for ax, (slot, s) in zip(axes.flat if hasattr(axes, "flat") else [axes], samples.items()):
        ax.imshow(image_grid(s.rows.flatten(0, 1), nrow=cols, scale=scale), interpolation="nearest")
        ax.set_title(slot, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
