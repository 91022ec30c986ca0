"""How close samples stay to the representation they were drawn from (paper Fig. 22-24).

Every distance is a squared L2 distance in representation space to the conditioning vector h(x). The
references say what "close" means: random validation images (far) and the nearest training images (the
neighbourhood an instance-conditioned GAN is trained to cover).
"""
from __future__ import annotations

from typing import Callable

import torch

from rcdm_lib.metrics import encoder_view, knn, pairwise_squared_distances, squared_distances_to


def distances_to_condition(encode: Callable, h: torch.Tensor, pool: torch.Tensor, train: torch.Tensor, k_ref: int,
                           samples: dict[str, torch.Tensor], encoder_size: int) -> dict[str, torch.Tensor]:
    """{what: squared distances to h [N, d]}: "random validation" (every pool image [P, 3, E, E] to every h),
    "<k_ref> nearest training" (train [T, 3, E, E]), and for each entry of `samples` ([N, K, 3, S, S], resized
    to the encoder's `encoder_size`) the distances [N, K] of its re-encoded samples. Real images take the same
    S -> E round trip as samples when `pool` and `train` are given at the RCDM resolution."""
    n = h.shape[0]
    out = {"random validation": pairwise_squared_distances(h, encode(encoder_view(pool, encoder_size))).flatten(),
           f"{k_ref} nearest training": knn(h, encode(encoder_view(train, encoder_size)), k=k_ref)[0].flatten()}
    for name, x in samples.items():
        k = x.shape[1]
        out[name] = squared_distances_to(h, encode(encoder_view(x.flatten(0, 1), encoder_size)).view(n, k, -1))
    return out


def plot_distances(dist: dict[str, torch.Tensor], title: str, ylabel: str, compare=("RCDM samples", "IC-GAN samples")):
    """Boxes of every distance, and histograms of the two compared sample sets against the references' medians."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].boxplot([v.flatten().numpy() for v in dist.values()], showfliers=False)
    axes[0].set_xticks(range(1, len(dist) + 1), list(dist), rotation=20, fontsize=8)
    axes[0].set_ylabel(ylabel, fontsize=8)
    hi = float(torch.cat([v.flatten() for v in dist.values()]).quantile(0.98))
    bins = torch.linspace(0, hi, 30).numpy()
    for name, color in zip(compare, ("C0", "C3")):
        if name in dist:
            axes[1].hist(dist[name].flatten().clamp(max=hi).numpy(), bins=bins, alpha=0.55, color=color, label=name,
                         density=True)
    for (name, v), style in zip(list(dist.items())[:2], (":", "--")):
        axes[1].axvline(float(v.median()), color="k", ls=style, label=f"median, {name}")
    axes[1].set_xlabel("squared distance to h(x)", fontsize=8)
    axes[1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
