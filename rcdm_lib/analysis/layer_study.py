"""Backbone vs projector and invariance to augmentations on a run (paper Fig. 3, 4, 25-28), with factor tables.

Samples of every representation are read by the run's factors (rcdm_lib.analysis.run_factors); "kept" is how
often a sample's reading equals the conditioning image's, against the chance level of a random other image.
Under each augmentation of the SSL menu the question is which factors of the *original* image survive.

    study = LayerStudy(run, factors, images, n_per=3, steps=25)
    table = study.factor_table()                        # {rep: {factor: {"kept", "chance"}}}
    aug = study.augmentations(n_images=8)               # invariance scores, samples and factor tables
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rcdm_lib import claims
from rcdm_lib.analysis.augmentations import AUGMENTATIONS, augment, invariance_score
from rcdm_lib.metrics import agreement_table, factor_agreement, per_sample_variance
from rcdm_lib.viz import image_grid


@dataclass
class AugmentationResult:
    images: dict[str, torch.Tensor]                  # augmentation -> augmented images [A, 3, E, E]
    invariance: dict[str, dict[str, float]]          # rep -> augmentation -> score (0 invariant, 1 another image)
    samples: dict[tuple[str, str], torch.Tensor]     # (rep, augmentation) -> [A, K, 3, S, S]
    table: dict[tuple[str, str], dict]               # (rep, augmentation) -> factor table against the original


class LayerStudy:
    def __init__(self, run, factors, images: torch.Tensor, n_per: int = 3, steps: int = 25, seed: int = 0):
        """images [N, 3, E, E]: the conditioning images; every representation of the run is sampled n_per times."""
        self.run, self.factors, self.images = run, factors, images
        self.n_per, self.steps, self.seed = n_per, steps, seed
        self.reference = factors.read(run.rcdm_view(images))   # the reading of each conditioning image
        self.samples = {n: run.sample(n, run.encode(n, images), n_per=n_per, steps=steps, seed=seed)
                        for n in run.names}
        self.spread = {n: float(per_sample_variance(x).mean()) for n, x in self.samples.items()}

    def factor_table(self) -> dict[str, dict]:
        return {n: agreement_table(self.factors.read(x), self.reference, self.factors.factors)
                for n, x in self.samples.items()}

    def kept(self) -> dict[str, dict[str, torch.Tensor]]:
        """{rep: {factor: [N, K]}}: 1 where a sample's reading equals its conditioning image's (the factor table's
        "kept" per sample, for paired comparisons: rcdm_lib.analysis.beside)."""
        return {n: {f: k.float() for f, k in factor_agreement(self.factors.read(x), self.reference,
                                                              self.factors.factors).items()}
                for n, x in self.samples.items()}

    def augmentations(self, n_images: int) -> AugmentationResult:
        run, g = self.run, torch.Generator().manual_seed(self.seed)
        images = self.images[:n_images]
        augmented = {a: augment(a, images, g) for a in AUGMENTATIONS}
        invariance = {n: {a: invariance_score(lambda x, n=n: run.encode(n, x), self.images, a, seed=self.seed)
                          for a in AUGMENTATIONS} for n in run.names}
        every = torch.cat([augmented[a] for a in AUGMENTATIONS])           # one sampling call per representation
        samples = {}
        for n in run.names:
            x = run.sample(n, run.encode(n, every), n_per=self.n_per, steps=self.steps, seed=self.seed)
            samples.update({(n, a): xa for a, xa in zip(AUGMENTATIONS, x.split(n_images))})
        ref = {k: v[:n_images] for k, v in self.reference.items()}
        table = {key: agreement_table(self.factors.read(x), ref, self.factors.factors, permutations=5)
                 for key, x in samples.items()}
        return AugmentationResult(augmented, invariance, samples, table)


def print_factor_table(table: dict[str, dict], scale: str) -> None:
    names = list(next(iter(table.values())))
    print(f"[{scale} scale] fraction of samples whose factor reading equals the conditioning image's "
          "(continuous: within 15% of the range); chance in brackets")
    print(f"{'representation':22s} " + " ".join(f"{n:>12s}" for n in names))
    for rep, t in table.items():
        print(f"{rep:22s} " + " ".join(f"{t[n]['kept']:5.2f} ({t[n]['chance']:.2f})" for n in names))


def print_augmentations(aug: AugmentationResult, scale: str, n_per: int) -> None:
    print(f"[{scale} scale] invariance score E|h(x)-h(aug x)|^2 / E|h(x)-h(x')|^2 (0 = invariant, 1 = like another "
          "image)")
    print(f"{'representation':22s} " + " ".join(f"{a:>12s}" for a in AUGMENTATIONS))
    for rep, r in aug.invariance.items():
        print(f"{rep:22s} " + " ".join(f"{r[a]:12.3f}" for a in AUGMENTATIONS))
    n = next(iter(aug.images.values())).shape[0]
    names = list(next(iter(aug.table.values())))
    print(f"\n[{scale} scale] factors of the *original* image kept by samples conditioned on the augmented one "
          f"({n} images x {n_per} samples)")
    print(f"{'representation':22s} {'augmentation':13s} " + " ".join(f"{f:>10s}" for f in names))
    for (rep, a), t in aug.table.items():
        print(f"{rep:22s} {a:13s} " + " ".join(f"{t[f]['kept']:10.2f}" for f in names))


def plot_backbone_vs_projector(study: LayerStudy, pairs, n_show: int, scale: int):
    import matplotlib.pyplot as plt

    cond = study.run.rcdm_view(study.images[:n_show]).unsqueeze(1)
    fig, axes = plt.subplots(1, max(1, 2 * len(pairs)), figsize=(3 * max(1, 2 * len(pairs)), 3), squeeze=False)
    for j, (_, bb, hd) in enumerate(pairs):
        for k, rep in enumerate((bb, hd)):
            ax = axes[0, 2 * j + k]
            grid = torch.cat([cond, study.samples[rep][:n_show]], 1).flatten(0, 1)
            ax.imshow(image_grid(grid, nrow=study.n_per + 1, scale=scale))
            ax.set_title(f"{rep}\npixel variance {study.spread[rep]:.3f}", fontsize=8)
    for ax in axes[0]:
        ax.axis("off")
    fig.suptitle(f"conditioning image | samples, backbone vs projector ({study.run.profile} scale)", fontsize=10)
    fig.tight_layout()
    return fig


def augmentation_panel(run, aug: AugmentationResult, rep: str, a: str, n_show: int, scale: int):
    """uint8 [H, W, 3]: per row, the augmented image and its samples."""
    rows = torch.cat([run.rcdm_view(aug.images[a][:n_show]).unsqueeze(1), aug.samples[(rep, a)][:n_show]], 1)
    return image_grid(rows.flatten(0, 1), nrow=rows.shape[1], scale=scale)


def plot_augmentations(run, aug: AugmentationResult, scale: int):
    import matplotlib.pyplot as plt

    names = list(aug.invariance)
    k = next(iter(aug.samples.values())).shape[1]
    fig, axes = plt.subplots(len(names), 1, figsize=(1.0 * len(AUGMENTATIONS) * (k + 1), 2.2 * len(names)),
                             squeeze=False)
    for i, rep in enumerate(names):
        cols = [torch.cat([run.rcdm_view(aug.images[a][:1]).unsqueeze(1), aug.samples[(rep, a)][:1]], 1)
                for a in AUGMENTATIONS]
        axes[i, 0].imshow(image_grid(torch.cat(cols, 1).flatten(0, 1), nrow=len(AUGMENTATIONS) * (k + 1),
                                     scale=scale))
        axes[i, 0].set_title(f"{rep}: " + " | ".join(AUGMENTATIONS) + " (augmented image, then samples)", fontsize=8)
        axes[i, 0].axis("off")
    fig.tight_layout()
    return fig


def record_layer_verdicts(run, study: LayerStudy, table: dict, pairs) -> list[str]:
    """Record each method's projector/backbone variance ratio and appearance factors kept, and the two verdicts;
    returns the lines to print."""
    appearance = [f for f in study.factors.roles.appearance if f in next(iter(table.values()))]
    for method, bb, hd in pairs:
        run.record("projector_variance", f"{method}/variance_head_over_backbone",
                   study.spread[hd] / max(study.spread[bb], 1e-12),
                   f"{method}: pixel variance of projector samples / backbone samples (paper: > 1)")
        for f in appearance:
            run.record("backbone_keeps_colour", f"{method}/{f}_kept_backbone_minus_head",
                       table[bb][f]["kept"] - table[hd][f]["kept"],
                       f"{method}: fraction of samples keeping the {f}, backbone minus projector (paper: > 0)")
    if not pairs:
        return ["no verdict on backbone vs projector: the run has no method with both layers"
                + (f" ({run.left_out_line()})" if run.left_out else "")]
    # the paper: projector samples vary clearly more; we ask for at least 10% more pixel variance
    verdicts = {"projector_variance": claims.verdict_from_comparisons(
        {m: (study.spread[hd], study.spread[bb]) for m, bb, hd in pairs}, expect="higher", margin=0.1,
        relative=True, what="the pixel variance of projector samples", against="backbone samples",
        paper="clearly more varied (Fig. 3, 25-27)"),
        "backbone_keeps_colour": claims.verdict_from_comparisons(
        {f"{m} {f}": (table[bb][f]["kept"], table[hd][f]["kept"]) for m, bb, hd in pairs for f in appearance},
        expect="higher", what="the fraction of backbone samples keeping the "
        + " or ".join({"color": "colour"}.get(f, f) for f in appearance),
        against="projector samples", paper="the backbone keeps them, the projector drops them (Fig. 4, 27)")}
    lines = []
    for claim, verdict in verdicts.items():
        run.record_verdict(claim, verdict)
        lines.append(f"[{run.profile} scale] {claim}: {verdict}")
    return lines
