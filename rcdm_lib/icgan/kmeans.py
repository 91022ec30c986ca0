"""IC-GAN's unconditional recipe: condition on the training instances nearest to k-means centres.

The official code (data_utils/store_kmeans_indexes.py) L2-normalises the training features,
runs k-means (1,000 centres on ImageNet), keeps for each centre the index of the closest
training instance, and generates from those instances chosen uniformly.

    sampler = KMeansInstanceSampler(train_reps, n_clusters=100)
    h = sampler.sample(64, generator=torch.Generator().manual_seed(0))   # [64, D], raw training reps
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from rcdm_lib.metrics.distances import pairwise_squared_distances


def kmeans(x: torch.Tensor, n_clusters: int, iters: int = 50, generator: torch.Generator | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ seeding: x [N, D] -> (centres [K, D], assignment [N])."""
    n = x.shape[0]
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be between 1 and the number of points {n}; got {n_clusters}")
    x = x.double()
    centres = [x[torch.randint(n, (1,), generator=generator)].squeeze(0)]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, n_clusters):                         # k-means++: far points are likelier seeds
        p = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        centres.append(x[torch.multinomial(p, 1, generator=generator)].squeeze(0))
        d2 = torch.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = torch.stack(centres)
    assign = None
    for _ in range(iters):
        new = pairwise_squared_distances(x, c).argmin(1)
        if assign is not None and torch.equal(new, assign):
            break
        assign = new
        counts = torch.bincount(assign, minlength=n_clusters).double()
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        keep = counts > 0                                  # an empty cluster keeps its centre
        c[keep] = sums[keep] / counts[keep, None]
    return c.float(), assign


class KMeansInstanceSampler:
    """Uniform draws among the training instances closest to k-means centres of the L2-normalised features."""

    def __init__(self, train_reps: torch.Tensor, n_clusters: int = 1000, iters: int = 50, seed: int = 0):
        if train_reps.dim() != 2:
            raise ValueError(f"training representations must be [N, D], got {list(train_reps.shape)}")
        self.reps = train_reps.float()
        f = F.normalize(self.reps, dim=1)
        self.centres, _ = kmeans(f, n_clusters, iters, torch.Generator().manual_seed(seed))
        self.instances = pairwise_squared_distances(self.centres, f).argmin(1)     # [K] training indices

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[n, D]: representations of uniformly chosen centre instances (raw, as the encoder gave them)."""
        i = torch.randint(self.instances.shape[0], (n,), generator=generator)
        return self.reps[self.instances[i]]
