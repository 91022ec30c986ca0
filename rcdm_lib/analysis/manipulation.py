"""Manipulating representations and decoding the result (paper Fig. 6, 31-33).

The paper looks at the k nearest neighbours of an image in representation space, finds the
dimensions that are non-zero in most of them ("most common": what the neighbourhood shares)
and the ones that are rarely non-zero ("least common"), edits the image's representation
(sets those dimensions to zero, or copies them from another image's representation) and
samples RCDM with the edited vector to see what the dimensions encoded. Representation
algebra h(a) - h(b) + h(c) swaps what b and c differ in (e.g. the background) into a.

    idx, sel = neighbour_dims(h, bank, k=10, threshold=8, tol=activity_tolerance(bank, 0.75))
    h0 = zero_dims(h, sel.common)                       # remove what the neighbours share
    h1 = copy_dims(h, h_target, sel.common)              # take it from the target instead
    x = decode_edits(models, slot, {"zero": h0, "copy": h1}, n_per=2)

"Non-zero" is |h_d| > tol_d. A ResNet-50 trunk's features are averages of post-ReLU maps and
many are exactly 0, so the paper's rule is tol = a tiny constant (`quantile=None`). The tiny
encoders' backbones are much denser (3-7% exact zeros on the built-in data, measured on the
tiny artifacts), so almost every dimension is "non-zero" in every neighbour; there a
dimension counts as active when it exceeds a per-dimension quantile of its values over a
reference bank (`activity_tolerance(bank, quantile)`), which gives the same kind of sparse
active set as the ResNet-50 trunk.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rcdm_lib.metrics.neighbours import knn

ABS_TOL = 1e-6      # "non-zero" for the paper's rule: fp16/fp32 noise of an exact zero stays below it


def activity_tolerance(bank: torch.Tensor, quantile: float | None = None, atol: float = ABS_TOL) -> torch.Tensor:
    """Per-dimension activity threshold from reference representations bank [P, D] -> [D].

    quantile=None: the paper's rule, a dimension is active when it is non-zero (|h| > atol).
    quantile=q: active when |h_d| exceeds the q-quantile of |h_d| over the bank (and atol),
    i.e. a dimension is active in a fraction 1 - q of the bank's images.
    """
    if bank.dim() != 2:
        raise ValueError(f"bank must be [P, D] representations, got shape {list(bank.shape)}")
    if quantile is None:
        return torch.full((bank.shape[1],), float(atol), dtype=torch.float32)
    if not 0.0 <= quantile < 1.0:
        raise ValueError(f"quantile must be in [0, 1) (or None for the non-zero rule), got {quantile}")
    q = torch.quantile(bank.abs().double(), float(quantile), dim=0)
    return q.clamp_min(atol).float()


def active(h: torch.Tensor, tol: torch.Tensor | float = ABS_TOL) -> torch.Tensor:
    """Which dimensions are active: |h| > tol for h [..., D], tol a number or [D] -> bool [..., D]."""
    tol = torch.as_tensor(tol, dtype=torch.float32)
    if tol.dim() not in (0, 1) or (tol.dim() == 1 and tol.shape[0] != h.shape[-1]):
        raise ValueError(f"tol must be a number or [D] = [{h.shape[-1]}], got shape {list(tol.shape)}")
    return h.float().abs() > tol.to(h.device)


@dataclass
class DimSelection:
    """Dimensions selected from each image's neighbourhood (N images, D dimensions, k neighbours)."""
    counts: torch.Tensor   # [N, D] long: in how many of the k neighbours each dimension is active
    common: torch.Tensor   # [N, D] bool: active in at least `threshold` neighbours (most common)
    rare: torch.Tensor     # [N, D] bool: inactive in at least `threshold` neighbours (least common)
    k: int
    threshold: int


def select_dims(neighbour_reps: torch.Tensor, threshold: int, tol: torch.Tensor | float = ABS_TOL) -> DimSelection:
    """The most and least common active dimensions among neighbours [N, k, D].

    most common: active in at least `threshold` of the k neighbours; least common: inactive in
    at least `threshold` of them (active in at most k - threshold). With threshold > k / 2 the
    two sets are disjoint.
    """
    if neighbour_reps.dim() != 3:
        raise ValueError(f"neighbour_reps must be [N, k, D], got shape {list(neighbour_reps.shape)}")
    k = neighbour_reps.shape[1]
    if not 1 <= threshold <= k:
        raise ValueError(f"threshold must be between 1 and k = {k} (neighbours), got {threshold}")
    counts = active(neighbour_reps, tol).sum(1)                  # [N, D]
    return DimSelection(counts=counts, common=counts >= threshold, rare=counts <= k - threshold,
                        k=k, threshold=int(threshold))


def neighbour_dims(h: torch.Tensor, bank: torch.Tensor, k: int, threshold: int,
                   tol: torch.Tensor | float = ABS_TOL, metric: str = "l2",
                   exclude_self: bool = False) -> tuple[torch.Tensor, DimSelection]:
    """The k nearest bank rows of each representation h [N, D] (bank [P, D]) and the dimensions
    selected from them -> (indices [N, k], DimSelection). The image itself counts only when it
    is in the bank (exclude_self drops bank row i for query i when h is the bank)."""
    if h.dim() != 2 or bank.dim() != 2 or h.shape[1] != bank.shape[1]:
        raise ValueError(f"expected h [N, D] and bank [P, D] with the same D; got {list(h.shape)} and "
                         f"{list(bank.shape)}")
    _, idx = knn(h, bank, k=k, metric=metric, exclude_self=exclude_self)
    return idx, select_dims(bank[idx], threshold, tol)


def _check_mask(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = torch.as_tensor(mask, dtype=torch.bool, device=h.device)
    if mask.shape[-1] != h.shape[-1] or mask.dim() > h.dim():
        raise ValueError(f"mask must be [D] or [N, D] matching h {list(h.shape)}, got {list(mask.shape)}")
    return mask


def zero_dims(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """h [N, D] (or [D]) with the dimensions in mask ([N, D] or [D], bool) set to 0."""
    mask = _check_mask(h, mask)
    return torch.where(mask, torch.zeros_like(h), h)


def copy_dims(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """h [N, D] with the dimensions in mask replaced by those of target ([N, D] or [D])."""
    mask = _check_mask(h, mask)
    if target.shape[-1] != h.shape[-1]:
        raise ValueError(f"target must have D = {h.shape[-1]} dimensions like h, got {list(target.shape)}")
    return torch.where(mask, target.to(h.dtype).expand_as(h), h)


def representation_algebra(ha: torch.Tensor, hb: torch.Tensor, hc: torch.Tensor) -> torch.Tensor:
    """h(a) - h(b) + h(c): a with what separates c from b (all [N, D] or [D]). Not clamped at 0:
    a post-ReLU representation may go negative; RCDM decodes it as given."""
    if not ha.shape == hb.shape == hc.shape:
        raise ValueError(f"h(a), h(b), h(c) must have one shape; got {list(ha.shape)}, {list(hb.shape)}, "
                         f"{list(hc.shape)}")
    return ha - hb + hc


def decode_edits(models, slot: str, reps: dict[str, torch.Tensor], n_per: int = 2, steps: int = 25,
                 seed: int = 0, sampler: str = "ddim") -> dict[str, torch.Tensor]:
    """RCDM samples of several edited representations {name: [N, d]} of `slot`, in one call.

    Every representation gets the same initial noise for its j-th sample, so with the
    deterministic DDIM sampler two edits of one image differ only by the edit.
    Returns {name: [N, n_per, 3, S, S]} (`models` is a rcdm_lib.models.ProfileModels).
    """
    names = list(reps)
    if not names:
        raise ValueError("reps is empty; expected at least one {name: [N, d]} representation")
    sizes = [reps[n].shape[0] for n in names]
    s = models.image_size
    noise = torch.randn(n_per, 3, s, s, generator=torch.Generator().manual_seed(seed))
    x = models.sample(slot, torch.cat([reps[n].float() for n in names]), n_per=n_per, steps=steps,
                      noise=noise, seed=seed, sampler=sampler)
    return dict(zip(names, x.split(sizes)))


# ------------------------------------------------------------------ choosing images by factors

def contrasting_pairs(factors: dict, n: int, names=("shape", "color", "background"), seed: int = 0) -> torch.Tensor:
    """[n, 2] (source, target) indices into a pool with known factors {name: [P]} whose two
    images differ in every factor of `names`, so an edit's effect on each factor is visible."""
    f = {k: np.asarray(factors[k]) for k in names}
    pool = len(next(iter(f.values())))
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.permutation(pool):
        ok = np.ones(pool, bool)
        for v in f.values():
            ok &= v != v[i]
        cand = np.nonzero(ok)[0]
        if len(cand):
            out.append((int(i), int(rng.choice(cand))))
        if len(out) == n:
            return torch.tensor(out)
    raise ValueError(f"found {len(out)} source/target pairs differing in {list(names)} in a pool of {pool}, "
                     f"{n} asked for; use a larger pool or fewer pairs")


def swap_triplets(factors: dict, n: int, content=("shape", "color"), swap: str = "background",
                  seed: int = 0) -> torch.Tensor:
    """[n, 3] indices (a, b, c) into a pool with known factors for h(a) - h(b) + h(c): b is another object (its
    first `content` factor differs from a's) with a's `swap` factor, c is b's object (every `content` factor
    equal) with another `swap` value, so c - b is "change the `swap` factor" and the algebra asks for a's object
    with c's. The paper's case (the default): b another shape on a's background, c b's shape and colour on
    another background."""
    cont = [np.asarray(factors[k]) for k in content]
    sw = np.asarray(factors[swap])
    rng = np.random.default_rng(seed)
    out = []
    for a in rng.permutation(len(sw)):
        for b in rng.permutation(np.nonzero((sw == sw[a]) & (cont[0] != cont[0][a]))[0]):
            same = np.ones(len(sw), bool)
            for v in cont:
                same &= v == v[b]
            cs = np.nonzero(same & (sw != sw[a]))[0]
            if len(cs):
                out.append((int(a), int(b), int(rng.choice(cs))))
                break
        if len(out) == n:
            return torch.tensor(out)
    raise ValueError(f"found {len(out)} {swap}-swap triplets in a pool of {len(sw)} images, {n} asked for; use a "
                     f"larger pool (more images share {' and '.join(content)}) or fewer triplets")


def follow_rates(pred: dict, source: dict, target: dict, names) -> dict[str, dict]:
    """How often decoded edits take the target's (categorical) factor instead of the source's.

    pred {name: [N, K]} factor readings of K samples per edit; source, target {name: [N]}.
    Only rows where source and target differ count. Returns {name: {"target": fraction
    reading the target's value, "source": fraction reading the source's, "n": samples}}.
    """
    out = {}
    for name in names:
        p, s, t = (torch.as_tensor(d[name]).long() for d in (pred, source, target))
        if p.dim() == 1:
            p = p[:, None]
        if s.shape != t.shape or p.shape[0] != s.shape[0]:
            raise ValueError(f"{name}: expected pred [N, K] and source, target [N]; got {list(p.shape)}, "
                             f"{list(s.shape)}, {list(t.shape)}")
        rows = s != t
        m = p[rows]
        n = m.numel()
        out[name] = {"target": float((m == t[rows, None]).float().mean()) if n else float("nan"),
                     "source": float((m == s[rows, None]).float().mean()) if n else float("nan"), "n": n}
    return out
