"""Rank and mean reciprocal rank of the conditioning image (paper Table 2b, Fig. 18).

Each RCDM sample is re-encoded by the encoder that conditioned it; the conditioning image is
ranked among a pool of validation images by distance to the sample's representation. Rank 1
means the sample's representation is nearer to its own conditioning image than to any other
image of the pool; MRR is the mean of 1/rank (1.0 is perfect, about H_P/P at chance).

Ties count against the target ("competition" ranking: 1 + the number of pool items strictly
nearer), so a constant encoder scores rank 1 only when the pool has one item.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from rcdm_lib.metrics.distances import pairwise_distances


def target_ranks(queries: torch.Tensor, pool: torch.Tensor, targets: torch.Tensor, metric: str = "l2",
                 chunk: int = 2048) -> torch.Tensor:
    """1-based rank of pool[targets[i]] among all pool rows by distance to queries[i].

    queries [M x D], pool [P x D], targets [M] (indices into pool) -> ranks [M] (int64).
    """
    targets = torch.as_tensor(targets, dtype=torch.long)
    if queries.shape[0] != targets.shape[0]:
        raise ValueError(f"{queries.shape[0]} queries but {targets.shape[0]} targets")
    if targets.numel() and (targets.min() < 0 or targets.max() >= pool.shape[0]):
        raise ValueError(f"targets must index the pool of {pool.shape[0]} representations")
    out = []
    for s in range(0, queries.shape[0], chunk):
        d = pairwise_distances(queries[s:s + chunk], pool, metric)
        t = targets[s:s + chunk]
        dt = d[torch.arange(d.shape[0]), t][:, None]
        closer = (d < dt).sum(1)
        ties = (d == dt).sum(1) - 1          # other pool items at exactly the target's distance
        out.append(1 + closer + ties)
    return torch.cat(out).long()


def mean_reciprocal_rank(ranks: torch.Tensor) -> float:
    return float((1.0 / ranks.double()).mean())


def chance_mrr(pool_size: int) -> float:
    """MRR of a uniformly random ranking of a pool of P items: H_P / P."""
    return float(sum(1.0 / r for r in range(1, pool_size + 1)) / pool_size)


def rank_summary(ranks: torch.Tensor, pool_size: int, ks=(1, 5, 10)) -> dict:
    """{"mrr", "mean_rank", "median_rank", "top1", "top5", ..., "pool_size", "chance_mrr", "n"}."""
    r = ranks.flatten().double()
    out = {"mrr": mean_reciprocal_rank(r), "mean_rank": float(r.mean()), "median_rank": float(r.median()),
           "pool_size": int(pool_size), "chance_mrr": chance_mrr(pool_size), "n": int(r.numel())}
    for k in ks:
        out[f"top{k}"] = float((r <= k).double().mean())
    return out


def encoder_view(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images [N x 3 x H x W] in [-1, 1] resized to the encoder resolution (bilinear, antialiased)."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False).clamp(-1, 1)


def sample_ranks(encode, samples: torch.Tensor, pool_images: torch.Tensor, targets: torch.Tensor,
                 encoder_size: int, metric: str = "l2") -> torch.Tensor:
    """Ranks [N x K] of each conditioning image for RCDM samples [N x K x 3 x S x S].

    encode: images [M, 3, E, E] in [-1, 1] -> [M, D] (the conditioning encoder).
    pool_images [P x 3 x S x S]: the pool at the RCDM resolution S, so that samples and pool
    take the same S -> E resize before encoding (the samples have no detail above S);
    targets [N]: pool index of each sample row's conditioning image.
    """
    n, k = samples.shape[:2]
    pool = encode(encoder_view(pool_images, encoder_size))
    q = encode(encoder_view(samples.flatten(0, 1), encoder_size))
    return target_ranks(q, pool, torch.as_tensor(targets).repeat_interleave(k), metric).view(n, k)
