"""Rank and MRR on constructed cases with known answers."""
import pytest
import torch

from rcdm_lib.metrics.rank import chance_mrr, mean_reciprocal_rank, rank_summary, sample_ranks, target_ranks


def test_ranks_on_a_line():
    pool = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    q = torch.tensor([[0.1], [0.1], [2.9], [2.4]])
    targets = torch.tensor([0, 3, 3, 2])
    # q0 nearest 0 -> 1; q1 order 0,1,2,3 -> 4; q2 nearest 3 -> 1; q3: 2 (0.4), 3 (0.6) -> 1
    assert target_ranks(q, pool, targets).tolist() == [1, 4, 1, 1]
    r = torch.tensor([1, 4, 1, 1])
    assert mean_reciprocal_rank(r) == pytest.approx((1 + 0.25 + 1 + 1) / 4)


def test_ties_count_against_the_target():
    pool = torch.zeros(5, 3)
    assert target_ranks(torch.zeros(2, 3), pool, torch.tensor([0, 4])).tolist() == [5, 5]


def test_cosine_metric_and_summary():
    pool = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    q = torch.tensor([[5.0, 0.1], [0.1, 0.2]])
    assert target_ranks(q, pool, torch.tensor([0, 0]), metric="cosine").tolist() == [1, 2]
    s = rank_summary(torch.tensor([1, 2, 3, 10]), pool_size=10, ks=(1, 3))
    assert s["top1"] == 0.25 and s["top3"] == 0.75 and s["mean_rank"] == 4.0
    assert s["chance_mrr"] == pytest.approx(sum(1 / k for k in range(1, 11)) / 10)


def test_random_queries_reach_chance_mrr():
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(50, 8, generator=g)
    q = torch.randn(4000, 8, generator=g)
    targets = torch.randint(50, (4000,), generator=g)
    mrr = mean_reciprocal_rank(target_ranks(q, pool, targets))
    assert mrr == pytest.approx(chance_mrr(50), rel=0.08)


def test_sample_ranks_identity_encoder():
    g = torch.Generator().manual_seed(0)
    pool = torch.rand(6, 3, 4, 4, generator=g) * 2 - 1
    samples = pool[[2, 5]][:, None].repeat(1, 3, 1, 1, 1)      # perfect samples
    ranks = sample_ranks(lambda x: x.flatten(1), samples, pool, torch.tensor([2, 5]), encoder_size=8)
    assert ranks.shape == (2, 3) and (ranks == 1).all()
