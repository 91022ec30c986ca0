"""Representation manipulation (rcdm_lib.analysis.manipulation): dimension selection against a
brute-force count, edits that touch exactly the selected dimensions, algebra, factor pickers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rcdm_lib.analysis.manipulation import (activity_tolerance, swap_triplets, contrasting_pairs,
                                            copy_dims, decode_edits, follow_rates, neighbour_dims,
                                            representation_algebra, select_dims, zero_dims)


def sparse_reps(n, d, p_zero=0.6, seed=0):
    """Post-ReLU-like data: about p_zero of the entries exactly 0, the rest positive."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    return torch.where(torch.rand(n, d, generator=g) < p_zero, torch.zeros_like(x), x)


def brute_force(h, bank, k, threshold, tol):
    """Loops only: squared distances, sort, count non-zero (> tol) entries per dimension."""
    n, d = h.shape
    counts = torch.zeros(n, d, dtype=torch.long)
    idx = []
    for i in range(n):
        dist = [sum((float(h[i, j]) - float(bank[p, j])) ** 2 for j in range(d)) for p in range(bank.shape[0])]
        nn = sorted(range(bank.shape[0]), key=lambda p: dist[p])[:k]
        idx.append(nn)
        for p in nn:
            for j in range(d):
                if abs(float(bank[p, j])) > float(tol[j]):
                    counts[i, j] += 1
    common = torch.tensor([[int(counts[i, j]) >= threshold for j in range(d)] for i in range(n)])
    rare = torch.tensor([[k - int(counts[i, j]) >= threshold for j in range(d)] for i in range(n)])
    return torch.tensor(idx), counts, common, rare


@pytest.mark.parametrize("quantile", [None, 0.5])
def test_selection_matches_brute_force_count(quantile):
    bank, h = sparse_reps(60, 12, seed=1), sparse_reps(7, 12, seed=2)
    tol = activity_tolerance(bank, quantile)
    k, threshold = 6, 4
    idx, sel = neighbour_dims(h, bank, k=k, threshold=threshold, tol=tol)
    b_idx, b_counts, b_common, b_rare = brute_force(h, bank, k, threshold, tol)
    assert torch.equal(idx.sort(1).values, b_idx.sort(1).values)
    assert torch.equal(sel.counts, b_counts)
    assert torch.equal(sel.common, b_common) and torch.equal(sel.rare, b_rare)
    assert sel.common.any() and sel.rare.any()          # the data exercises both sets
    assert not (sel.common & sel.rare).any()            # threshold > k / 2: disjoint


def test_activity_tolerance_rules():
    bank = sparse_reps(200, 5, seed=3)
    assert torch.all(activity_tolerance(bank) == 1e-6)                 # the paper's non-zero rule
    tol = activity_tolerance(bank, 0.75)
    frac = (bank.abs() > tol).float().mean(0)
    assert torch.allclose(frac, torch.full_like(frac, 0.25), atol=0.02)  # active in about 1 - q of the bank
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        activity_tolerance(bank, 1.5)


def test_select_dims_counts_and_threshold_errors():
    nb = torch.tensor([[[1.0, 0.0, 2.0], [1.0, 0.0, 0.0], [3.0, 0.5, 0.0]]])   # [1, 3, 3]
    sel = select_dims(nb, threshold=2)
    assert sel.counts.tolist() == [[3, 1, 1]]
    assert sel.common.tolist() == [[True, False, False]] and sel.rare.tolist() == [[False, True, True]]
    with pytest.raises(ValueError, match="between 1 and k = 3"):
        select_dims(nb, threshold=4)


def test_zero_and_copy_touch_exactly_the_selected_dims():
    h, target = sparse_reps(5, 16, p_zero=0.0, seed=4) + 1, sparse_reps(5, 16, p_zero=0.0, seed=5) + 3
    mask = torch.rand(5, 16, generator=torch.Generator().manual_seed(6)) < 0.3
    z = zero_dims(h, mask)
    assert torch.equal(z[mask], torch.zeros(int(mask.sum()))) and torch.equal(z[~mask], h[~mask])
    c = copy_dims(h, target, mask)
    assert torch.equal(c[mask], target[mask]) and torch.equal(c[~mask], h[~mask])
    assert torch.equal((c != h), mask)                  # h and target differ everywhere
    shared = copy_dims(h, target[0], mask[0])           # one target and one mask for every row
    assert torch.equal(shared[:, mask[0]], target[0, mask[0]].expand(5, -1))
    with pytest.raises(ValueError, match="mask must be"):
        zero_dims(h, mask[:, :3])


def test_algebra_swaps_the_background_of_constructed_vectors():
    obj1, obj2, bg1, bg2 = torch.eye(4)                  # one dimension per object and per background
    a, b, c = obj1 + bg1, obj2 + bg1, obj2 + bg2
    assert torch.equal(representation_algebra(a, b, c), obj1 + bg2)
    with pytest.raises(ValueError, match="one shape"):
        representation_algebra(a, b, c[:2])


def factor_pool(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return {"shape": rng.integers(0, 4, n), "color": rng.integers(0, 3, n), "background": rng.integers(0, 5, n)}


def test_background_triplets_satisfy_their_factors():
    f = factor_pool()
    t = swap_triplets(f, 20, seed=1)
    a, b, c = t.T.numpy()
    assert (f["background"][a] == f["background"][b]).all() and (f["shape"][a] != f["shape"][b]).all()
    assert (f["shape"][c] == f["shape"][b]).all() and (f["color"][c] == f["color"][b]).all()
    assert (f["background"][c] != f["background"][a]).all()
    with pytest.raises(ValueError, match="background-swap triplets"):
        swap_triplets({k: v[:3] for k, v in f.items()}, 20)
    # an ImageFolder's roles: b another class of a's colour, c b's class in another colour
    g = {"class": f["shape"], "color": f["color"]}
    a, b, c = swap_triplets(g, 10, content=("class",), swap="color", seed=3).T.numpy()
    assert (g["color"][a] == g["color"][b]).all() and (g["class"][a] != g["class"][b]).all()
    assert (g["class"][c] == g["class"][b]).all() and (g["color"][c] != g["color"][a]).all()


def test_contrasting_pairs_differ_in_every_factor():
    f = factor_pool()
    p = contrasting_pairs(f, 10, seed=2).numpy()
    for v in f.values():
        assert (v[p[:, 0]] != v[p[:, 1]]).all()


def test_follow_rates_counts_only_differing_rows():
    src = {"shape": torch.tensor([0, 1, 2])}
    tgt = {"shape": torch.tensor([5, 1, 7])}          # row 1: source == target, ignored
    pred = {"shape": torch.tensor([[5, 0], [9, 9], [2, 3]])}
    r = follow_rates(pred, src, tgt, ["shape"])["shape"]
    assert r["n"] == 4 and r["target"] == pytest.approx(0.25) and r["source"] == pytest.approx(0.5)


class FakeModels:
    """A 'sample' is its initial noise plus the representation's mean (as in test_interpolation)."""
    image_size = 4

    def sample(self, slot, h, n_per=1, steps=50, noise=None, seed=0, sampler="ddim"):
        return noise.unsqueeze(0).expand(h.shape[0], *noise.shape) + h.mean(1).view(-1, 1, 1, 1, 1)


def test_decode_edits_shares_noise_and_keeps_order():
    reps = {"a": torch.zeros(2, 3), "b": torch.ones(3, 3)}
    out = decode_edits(FakeModels(), "s", reps, n_per=2, seed=0)
    assert out["a"].shape == (2, 2, 3, 4, 4) and out["b"].shape == (3, 2, 3, 4, 4)
    assert torch.allclose(out["b"][0] - out["a"][0], torch.ones(2, 3, 4, 4))   # same noise, rep mean 1 vs 0


def test_image_menus_links_every_stack_of_each_level():
    import ipywidgets as w
    from ipywidgets.widgets.widget import _instances
    from ipywidgets.widgets.widget_link import Link

    from rcdm_lib.widgets import image_menus

    panel = lambda v: np.full((4, 6, 3), v, np.uint8)     # noqa: E731
    panels = [[[panel(i * 10 + j * 3 + t) for t in range(2)] for j in range(3)] for i in range(2)]
    box = image_menus(panels, [("source", ["s0", "s1"]), ("target", ["t0", "t1", "t2"]), ("threshold", ["6", "8"])])
    drops, root = box.children[0].children, box.children[1]
    assert [len(d.options) for d in drops] == [2, 3, 2]
    assert isinstance(root, w.Stack) and len(root.children) == 2 and len(root.children[1].children) == 3
    links = [x for x in _instances.values() if isinstance(x, Link) and any(x.source[0] is d for d in drops)]
    assert sum(x.source[0] is drops[0] for x in links) == 1
    assert sum(x.source[0] is drops[1] for x in links) == 2        # one per source
    assert sum(x.source[0] is drops[2] for x in links) == 6        # one per (source, target)
    with pytest.raises(ValueError, match="has 2 entries but menu 'target' has 3"):
        image_menus([[panel(0), panel(1)]], [("source", ["s"]), ("target", ["a", "b", "c"])])
