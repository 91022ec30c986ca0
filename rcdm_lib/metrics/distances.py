"""Squared distances in representation space and the spread of samples (paper Fig. 19-20, 22-23)."""
from __future__ import annotations

import torch


def pairwise_squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 for a [M x D], b [P x D] -> [M x P] (float64 accumulation, clamped at 0)."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected [M, D] and [P, D] with the same D; got {list(a.shape)} and {list(b.shape)}")
    a, b = a.double(), b.double()
    d = (a * a).sum(1, keepdim=True) - 2 * a @ b.t() + (b * b).sum(1)[None]
    return d.clamp_min(0).float()


def pairwise_cosine_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - cos(a_i, b_j) -> [M x P]."""
    a = torch.nn.functional.normalize(a.double(), dim=1)
    b = torch.nn.functional.normalize(b.double(), dim=1)
    return (1 - a @ b.t()).float()


def pairwise_distances(a: torch.Tensor, b: torch.Tensor, metric: str = "l2") -> torch.Tensor:
    """metric "l2" (squared Euclidean; same order as Euclidean) or "cosine" -> [M x P]."""
    if metric == "l2":
        return pairwise_squared_distances(a, b)
    if metric == "cosine":
        return pairwise_cosine_distances(a, b)
    raise ValueError(f"unknown metric {metric!r}; expected 'l2' or 'cosine'")


def squared_distances_to(reference: torch.Tensor, reps: torch.Tensor) -> torch.Tensor:
    """||reps[i, k] - reference[i]||^2: reference [N x D], reps [N x K x D] (or [N x D]) -> [N x K] (or [N])."""
    if reps.dim() == 2:
        return squared_distances_to(reference, reps[:, None])[:, 0]
    if reps.dim() != 3 or reference.shape != (reps.shape[0], reps.shape[2]):
        raise ValueError(f"expected reference [N, D] and reps [N, K, D]; got {list(reference.shape)} and {list(reps.shape)}")
    return ((reps.double() - reference.double()[:, None]) ** 2).sum(-1).float()


def random_pair_squared_distances(reps: torch.Tensor, n_pairs: int = 1000, generator=None) -> torch.Tensor:
    """Squared distances between `n_pairs` random pairs of distinct rows of reps [N x D] -> [n_pairs]."""
    n = reps.shape[0]
    if n < 2:
        raise ValueError("need at least 2 representations to form pairs")
    i = torch.randint(n, (n_pairs,), generator=generator)
    j = (i + torch.randint(1, n, (n_pairs,), generator=generator)) % n   # j != i
    return ((reps[i].double() - reps[j].double()) ** 2).sum(1).float()


def per_sample_variance(samples: torch.Tensor) -> torch.Tensor:
    """Spread of the samples drawn for one condition: samples [N x K x ...] -> [N], the variance
    over the K samples (unbiased), averaged over every other axis (pixels or representation dims)."""
    if samples.dim() < 3 or samples.shape[1] < 2:
        raise ValueError(f"expected [N, K, ...] with K >= 2 samples per condition; got {list(samples.shape)}")
    return samples.double().var(dim=1, unbiased=True).flatten(1).mean(1).float()
