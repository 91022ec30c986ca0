"""IC-GAN's neighbourhoods: each training instance i is paired with images of its k nearest
neighbours in representation space (Casanova et al. 2021, Sec. 2).

As in the official data pipeline (data_utils/datasets_common.py): features are L2-normalised,
neighbours are found by Euclidean distance with the instance itself removed, and a real image
for instance i is drawn uniformly from its k neighbours. The index is computed once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class NeighbourhoodIndex:
    """k nearest neighbours of every row of features [N, D] (self excluded), nearest first:
    `.neighbours` [N, k] indices and `.distances` [N, k] squared Euclidean distances between the
    L2-normalised features (2 - 2 cos). Brute force in float32 chunks: 30,000 x 128-d takes
    a few seconds on one CPU thread."""

    def __init__(self, features: torch.Tensor, k: int, chunk: int = 1024):
        if features.dim() != 2:
            raise ValueError(f"features must be [N, D], got {list(features.shape)}")
        n = features.shape[0]
        if not 1 <= k < n:
            raise ValueError(f"k_nn must be between 1 and N - 1 = {n - 1} (the instance itself is excluded); got {k}")
        f = F.normalize(features.float(), dim=1)                          # [N, D]
        self.k, self.n = int(k), n
        ds, ix = [], []
        for s in range(0, n, chunk):
            cos = f[s:s + chunk] @ f.t()                                   # [c, N]
            rows = torch.arange(cos.shape[0])
            cos[rows, rows + s] = -float("inf")                            # not its own neighbour
            v, i = cos.topk(k, dim=1)
            ds.append((2 - 2 * v).clamp_min(0))
            ix.append(i)
        self.distances, self.neighbours = torch.cat(ds), torch.cat(ix)   # [N, k] each

    def __len__(self) -> int:
        return self.n

    def sample(self, instances: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """For instance indices [B], one neighbour index each [B], uniform over its k neighbours."""
        instances = torch.as_tensor(instances, dtype=torch.long)
        if instances.numel() and (instances.min() < 0 or instances.max() >= self.n):
            raise ValueError(f"instance indices must be in [0, {self.n}); got min {int(instances.min())}, "
                             f"max {int(instances.max())}")
        j = torch.randint(self.k, (instances.shape[0],), generator=generator)
        return self.neighbours[instances, j]
