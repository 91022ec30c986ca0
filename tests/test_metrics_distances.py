"""Squared distances, per-sample variance and k-NN."""
import pytest
import torch

from rcdm_lib.metrics.distances import (pairwise_squared_distances, per_sample_variance,
                                        random_pair_squared_distances, squared_distances_to)
from rcdm_lib.metrics.neighbours import knn, knn_label_agreement


def test_pairwise_squared_distances_match_cdist():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=g), torch.randn(9, 5, generator=g)
    assert torch.allclose(pairwise_squared_distances(a, b), torch.cdist(a, b) ** 2, atol=1e-5)
    assert (pairwise_squared_distances(a, a).diagonal() == 0).all()


def test_squared_distances_to_reference():
    ref = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    reps = torch.tensor([[[3.0, 4.0], [0.0, 1.0]], [[1.0, 1.0], [2.0, 1.0]]])
    assert squared_distances_to(ref, reps).tolist() == [[25.0, 1.0], [0.0, 1.0]]
    assert squared_distances_to(ref, reps[:, 0]).tolist() == [25.0, 0.0]


def test_per_sample_variance_and_random_pairs():
    x = torch.zeros(2, 4, 3, 2, 2)
    x[1, :, 0] = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(4, 1, 1)
    v = per_sample_variance(x)
    # condition 1: var([0,1,2,3]) = 5/3 on one channel of three
    assert v[0] == 0 and v[1] == pytest.approx(5 / 3 / 3)
    d = random_pair_squared_distances(torch.eye(4), n_pairs=50, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(d, torch.full((50,), 2.0))     # distinct one-hot rows are sqrt(2) apart


def test_knn_orders_and_excludes_self():
    bank = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    d, i = knn(torch.tensor([[0.9], [6.0]]), bank, k=2)
    assert i.tolist() == [[1, 0], [3, 2]]
    assert d[0].tolist() == pytest.approx([0.01, 0.81], abs=1e-6)
    _, i = knn(bank, bank, k=1, exclude_self=True)
    assert i.flatten().tolist() == [1, 0, 1, 2]
    agree = knn_label_agreement(torch.tensor([0, 1]), torch.tensor([0, 0, 1, 1]), torch.tensor([[0, 2], [2, 3]]))
    assert agree.tolist() == [0.5, 1.0]
