"""k nearest neighbours in representation space (paper Fig. 17: neighbours of RCDM samples)."""
from __future__ import annotations

import torch

from rcdm_lib.metrics.distances import pairwise_distances


def knn(queries: torch.Tensor, bank: torch.Tensor, k: int = 5, metric: str = "l2",
        exclude_self: bool = False, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest rows of bank [P x D] for each query [M x D] -> (distances [M x k], indices [M x k]),
    nearest first. metric "l2" gives squared Euclidean distances, "cosine" 1 - cos.
    exclude_self drops bank row i for query i (queries and bank are the same set)."""
    if k > bank.shape[0] - int(exclude_self):
        raise ValueError(f"k={k} neighbours asked for but the bank has {bank.shape[0]} rows")
    ds, ix = [], []
    for s in range(0, queries.shape[0], chunk):
        d = pairwise_distances(queries[s:s + chunk], bank, metric)
        if exclude_self:
            r = torch.arange(s, s + d.shape[0])
            d[torch.arange(d.shape[0]), r] = float("inf")
        v, i = d.topk(k, dim=1, largest=False)
        ds.append(v)
        ix.append(i)
    return torch.cat(ds), torch.cat(ix)


def knn_label_agreement(query_labels: torch.Tensor, bank_labels: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Fraction of each query's neighbours (indices [M x k]) sharing its label -> [M]."""
    return (bank_labels[indices] == query_labels[:, None]).float().mean(1)
