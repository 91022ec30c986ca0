"""Table 2a on a run: FID and IS of RCDM samples against real images, measured beside the real-vs-real floor.

Two real sets of the same distribution: the FID reference and the images whose representations condition the
samples (tiny: the val and test splits; an ImageFolder: two disjoint halves of val/). Their own FID is the
floor: with n images per side no model can be told apart from the real data by less than that, so the verdict
counts a difference only beyond it. FIDs at different sample counts are not comparable, so each table is
measured at one count and says which.

    study = FidStudy(run, extractor="inception-v3-compat", steps=100)
    rows = study.rows(2000, conditional=run.select(layer="backbone", beside=False), unconditional=True)
    table = study.table(rows)              # None without the extractor's weights (study.missing says which key)
    study.record_verdict(table)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rcdm_lib import claims
from rcdm_lib.analysis.rep_samplers import GaussianNoiseSampler, KDESampler
from rcdm_lib.metrics import encoder_view, fidelity_metrics, register_encoder_extractor
from rcdm_lib.metrics.fidelity import INCEPTION

FLOOR = "real vs real (the floor)"
UNCONDITIONAL = "unconditional"


def real_sets(run, n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(reference [n, 3, S, S] at the RCDM resolution, conditioning images [n, 3, E, E], where they come from):
    two disjoint real sets of the same distribution. On an ImageFolder n is capped at half of val/."""
    val = run.data.split("val")
    if run.data.has_factors:
        return (run.rcdm_view(val.batch(range(n)).images), run.data.split("test").batch(range(n)).images,
                f"reference: {n} val images; conditioning: {n} test images")
    m = min(n, len(val) // 2)
    if m < 2:
        raise ValueError(f"FID needs at least 4 images in val/ (two disjoint halves of 2), found {len(val)}")
    capped = "" if m == n else f" (capped from {n}: val/ has {len(val)} images)"
    return (run.rcdm_view(val.batch(range(m)).images), val.batch(range(m, 2 * m)).images,
            f"reference: {m} val/ images; conditioning: the next {m}, disjoint{capped}")


@dataclass
class FidRows:
    n: int
    reference: torch.Tensor            # [n, 3, S, S] the FID reference
    samples: dict[str, torch.Tensor]   # row -> [n, 3, S, S]; the floor row holds the other real set
    what: str


class FidStudy:
    """FID/IS rows of a run (see the module docstring). extractor: "inception-v3-compat" (metrics.inception_weights)
    or "tiny-supervised" (the run's supervised backbone and its classifier: tiny-scale numbers)."""

    def __init__(self, run, extractor: str = INCEPTION, steps: int = 100, seed: int = 0, isc_splits: int = 10):
        self.run, self.steps, self.seed, self.isc_splits = run, steps, seed, isc_splits
        self.weights = run.inception_weights if extractor == INCEPTION else None
        if extractor == INCEPTION:
            self.extractor = INCEPTION if self.weights else None
        elif extractor == "tiny-supervised":
            sup, _ = run.supervised_and_ssl_backbones()
            if sup is None:
                raise ValueError("extractor 'tiny-supervised' needs the run's supervised backbone; use "
                                 f"{INCEPTION!r} with metrics.inception_weights")
            enc = run.encoder(sup)
            self.extractor = register_encoder_extractor(f"{run.profile}-supervised-backbone", enc, logits=enc.head,
                                                        input_size=run.encoder_size)
        else:
            raise ValueError(f"extractor must be {INCEPTION!r} or 'tiny-supervised', got {extractor!r}")

    @property
    def missing(self) -> str | None:
        """The line saying why there are no FID numbers (None when there are)."""
        return None if self.extractor else "left out: every FID and IS number (metrics.inception_weights is not set)"

    def describe(self) -> str:
        scale = "" if self.run.profile == "imagenet128" else " (tiny-scale numbers, not comparable with the paper's)"
        return f"features: {self.extractor or INCEPTION}{scale}; {self.steps} sampling steps"

    def _sample(self, name, h, n: int | None = None) -> torch.Tensor:
        kw = {"n": n} if name is None else {}
        return self.run.sample(name, h, n_per=1, steps=self.steps, seed=self.seed, **kw)[:, 0]

    def rows(self, n: int, conditional=(), samplers=(), n_train: int = 0, noise_std: float = 0.5,
             unconditional: bool = False, icgan_clusters: int | None = None) -> FidRows:
        """Samples for one table at n per row: RCDM on the conditioning images' representations (`conditional`),
        on Gaussian noise around and a KDE of n_train training representations (`samplers`), unconditional (when
        the run has it), and IC-GAN on real, k-means and KDE representations (when the run has it)."""
        run = self.run
        reference, cond, what = real_sets(run, n)
        n = reference.shape[0]
        out = {FLOOR: run.rcdm_view(cond)}
        for name in conditional:
            out[f"RCDM | {name}, real representations"] = self._sample(name, run.encode(name, cond))
        gen = torch.Generator().manual_seed(self.seed)
        train = run.data.split("train").batch(range(n_train)).images if (samplers or icgan_clusters) else None
        train_h: dict[str, torch.Tensor] = {}       # each representation of the train images, encoded once

        def encode_train(name):
            if name not in train_h:
                train_h[name] = run.encode(name, train)
            return train_h[name]

        for name in samplers:
            h = encode_train(name)
            out[f"RCDM | {name}, Gaussian noise on train reps"] = self._sample(
                name, GaussianNoiseSampler(h, std=noise_std).sample(n, gen))
            out[f"RCDM | {name}, KDE* of train reps"] = self._sample(name, KDESampler(h).sample(n, gen))
        if unconditional and run.has_unconditional:
            out[UNCONDITIONAL] = self._sample(None, None, n=n)
        if icgan_clusters and run.icgan is not None:
            from rcdm_lib.icgan import KMeansInstanceSampler

            ic, h = run.icgan, encode_train(run.icgan.slot)
            reps = {"real representations": run.encode(ic.slot, cond),
                    f"{icgan_clusters} k-means instances": KMeansInstanceSampler(h, icgan_clusters, seed=self.seed)
                    .sample(n, gen), "KDE* of train reps": KDESampler(h).sample(n, gen)}
            for k, r in reps.items():   # IC-GAN samples at the RCDM resolution
                out[f"IC-GAN | {ic.slot}, {k}"] = encoder_view(ic.sample(r, n_per=1, seed=self.seed)[:, 0],
                                                               run.image_size)
        return FidRows(n, reference, out, what)

    def table(self, rows: FidRows) -> dict[str, dict] | None:
        """{row: {"fid", "is_mean", ...}} against the reference, or None without the extractor."""
        if self.extractor is None:
            return None
        return {name: fidelity_metrics(rows.reference, x, extractor=self.extractor, isc_splits=self.isc_splits,
                                       weights_path=self.weights) for name, x in rows.samples.items()}

    def print_table(self, rows: FidRows, table: dict | None, title: str) -> None:
        print(f"[{self.run.profile} scale] {title}: {rows.n} samples per row vs {rows.n} real images ({rows.what})")
        if table is None:
            print(self.missing)
            return
        print(f"{'row':58s} {'FID':>8s} {'IS':>6s}")
        for name, r in table.items():
            print(f"{name:58s} {r['fid']:8.3f} {r['is_mean']:6.2f}")

    def record_verdict(self, rows: FidRows, table: dict | None, names) -> str:
        """Record the floor, the unconditional FID and each conditional FID of `names`, and the verdict (a
        conditional FID counts as lower only by more than the floor). Returns the verdict line, or why there is
        none."""
        run = self.run
        if table is None:
            return f"no verdict on conditional FID: {self.missing}"
        floor = table[FLOOR]["fid"]
        at = f"{self.extractor}, {rows.n} samples"
        run.record("conditional_fid", "floor/fid", floor, f"real vs real FID, the floor ({at})")
        if UNCONDITIONAL not in table:
            return f"no verdict on conditional FID: {run.missing('unconditional')}"
        uncond = table[UNCONDITIONAL]["fid"]
        run.record("conditional_fid", "unconditional/fid", uncond, f"unconditional FID ({at})")
        pairs = {}
        for name in names:
            fid = table[f"RCDM | {name}, real representations"]["fid"]
            run.record("conditional_fid", f"{name}/fid", fid, f"{name}: conditional FID ({at})")
            run.record("conditional_fid", f"{name}/fid_minus_unconditional", fid - uncond,
                       f"{name}: conditional minus unconditional FID (paper: < 0; counts beyond the floor {floor:.3g})")
            pairs[name] = (fid, uncond)
        if not pairs:
            return "no verdict on conditional FID: the run has no backbone representation"
        verdict = claims.verdict_from_comparisons(
            pairs, expect="lower", what="conditional FID", against="the unconditional FID", margin=floor,
            paper="lower (Table 2a)")
        run.record_verdict("conditional_fid", verdict)
        return f"[{run.profile} scale] verdict (a difference counts beyond the floor, FID {floor:.3g}): {verdict}"
