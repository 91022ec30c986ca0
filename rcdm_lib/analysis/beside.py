"""The models shown beside the run's own, compared in words with a paired error bar.

At tiny the run holds, beside the slot model, the DINO ViT's RCDM and the ResNet DINO one trained with the same
recipe (rcdm.beside; scripts/recipes/tiny_dino_vit.yaml): does a ViT keep what a ResNet trained with the same
objective keeps? Each chapter gives, per representation, a measure per conditioning image (the same images for
every representation); `compare_beside` says for every comparison whether the first is higher, lower or about
the same (the mean of the per-image differences within two standard errors of zero), whichever way it falls.

    print(*compare_beside(run, {n: reciprocal_ranks[n] for n in run.names}, "MRR"), sep="\\n")
    print(*compare_beside(run, study.kept(), "kept"), sep="\\n")    # {rep: {factor: [N, K]}}: one line a pair
"""
from __future__ import annotations

import itertools

import torch

from rcdm_lib.representations import CUSTOM


def comparisons(run) -> list[tuple[str, str, str]]:
    """(a, b, what differs) for every two models beside the run's own (custom encoders aside), and for each of them
    against the run's own representation of the same encoder and layer."""
    beside = [n for n, r in run.representations.items() if r.beside and r.layer != CUSTOM]
    own = {(r.method, r.layer): n for n, r in run.representations.items() if not r.beside}
    out = [(a, b, "another encoder, the same RCDM recipe") for a, b in itertools.combinations(beside, 2)]
    for n in beside:
        r = run.representations[n]
        if (r.method, r.layer) in own:
            out.append((n, own[(r.method, r.layer)], "the same encoder: its own RCDM against the run's model"))
    return out


def paired_difference(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, int]:
    """(mean difference, its standard error, N) of per-image means: a, b [N, ...] on the same N images."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"paired values need the same images: {a.shape[0]} against {b.shape[0]}")
    d = a.float().flatten(1).mean(1) - b.float().flatten(1).mean(1)   # [N]
    n = d.numel()
    return float(d.mean()), (float(d.std() / n ** 0.5) if n > 1 else float("inf")), n


def _relation(d: float, se: float) -> str:
    return "about the same" if abs(d) <= 2 * se else ("higher" if d > 0 else "lower")


def compare_beside(run, per_image: dict, what: str) -> list[str]:
    """Sentences for every comparison of `comparisons(run)`. per_image: {rep: [N, ...]} (one measure) or
    {rep: {measure: [N, ...]}} (several, one line a comparison). Empty when the run has no model beside."""
    lines = []
    for a, b, why in comparisons(run):
        if a not in per_image or b not in per_image:
            continue
        la, lb = run.representations[a].label, run.representations[b].label
        if isinstance(per_image[a], dict):
            parts, by = [], {"higher": [], "lower": [], "about the same": []}
            for m in per_image[a]:
                d, se, n = paired_difference(per_image[a][m], per_image[b][m])
                parts.append(f"{m} {float(per_image[a][m].float().mean()):.2f} vs "
                             f"{float(per_image[b][m].float().mean()):.2f} ({d:+.2f} +- {2 * se:.2f})")
                by[_relation(d, se)].append(m)
            said = "; ".join(f"{rel}: {', '.join(ms)}" for rel, ms in by.items() if ms)
            lines.append(f"[{run.profile} scale] {what}, {a} ({la}) against {b} ({lb}), {why}, over {n} images: "
                         f"{', '.join(parts)}. {a} is {said}.")
        else:
            d, se, n = paired_difference(per_image[a], per_image[b])
            va, vb = float(per_image[a].float().mean()), float(per_image[b].float().mean())
            lines.append(f"[{run.profile} scale] {what}: {a} ({la}) {va:.3f} against {b} ({lb}) {vb:.3f}, {why}: "
                         f"{_relation(d, se)} ({d:+.3f} +- {2 * se:.3f}, two standard errors over {n} images)")
    return lines
