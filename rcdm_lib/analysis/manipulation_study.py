"""Chapter 11 on a run: edit representations by the dimensions their neighbourhoods share, decode the edits with
RCDM, and read what changed (paper Fig. 6, 31-33).

The factors are the run's (rcdm_lib.analysis.run_factors): source/target pairs differ in every factor of the
`contrast` role, representation algebra swaps the `swap` factor (the paper's background; an ImageFolder's
dominant hue), and every decoded sample is read by the run's factor reader.

    study = ManipulationStudy(run, factors, n_bank=5000, k=10, threshold=8, n_pairs=16)
    res = study.edit(name)                 # neighbours, selected dimensions, the four edits
    study.decode(name, res)                # samples and their readings
    table = study.readings(name, res)      # changed / to target / to source, decoded and in representation space
    alg = study.algebra(name, n_triplets)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from rcdm_lib import claims
from rcdm_lib.analysis.manipulation import (activity_tolerance, contrasting_pairs, copy_dims, decode_edits,
                                            follow_rates, neighbour_dims, representation_algebra, swap_triplets,
                                            zero_dims)
from rcdm_lib.metrics import factor_agreement, knn
from rcdm_lib.viz import image_grid

WORD = {"color": "colour"}


def _words(names) -> str:
    return "/".join(WORD.get(n, n) for n in names)


@dataclass
class Edited:
    h_bank: torch.Tensor
    tol: torch.Tensor
    idx: torch.Tensor                     # [P, k] neighbours of each source in the bank
    sel: object                           # DimSelection of the sources
    edits: dict[str, torch.Tensor]        # edit -> [P, d]
    samples: dict = field(default_factory=dict)
    pred: dict = field(default_factory=dict)


def default_names(run, names=None) -> list[str]:
    """The representations edited: the given ones, else the supervised backbone and the first SSL backbone."""
    if names:
        return list(names)
    sup, ssl = run.supervised_and_ssl_backbones()
    return [n for n in [sup] + ssl[:1] if n] or run.names[:1]


class ManipulationStudy:
    def __init__(self, run, factors, n_bank: int, k: int, threshold: int, activity_quantile: float | None,
                 n_pairs: int, n_pool: int | None = None, n_extra_pairs: int = 0, n_per: int = 2, steps: int = 25,
                 sampler: str = "ddim", seed: int = 0):
        self.run, self.factors, self.k, self.threshold, self.quantile = run, factors, k, threshold, activity_quantile
        self.n_per, self.steps, self.sampler, self.seed = n_per, steps, sampler, seed
        self.cat = factors.roles.contrast
        split = run.data.split("test")
        pool = split.batch(range(len(split) if n_pool is None else min(n_pool, len(split))))
        self.images, self.truth = pool.images, factors.truth(pool)
        bank = run.data.split("train").batch(range(n_bank))
        self.bank_images, self.bank_truth = bank.images, factors.truth(bank)
        self.pairs = contrasting_pairs(self.truth, max(n_pairs, n_extra_pairs), names=self.cat, seed=seed)  # [P, 2]
        self.src, self.tgt = self.pairs[:n_pairs, 0], self.pairs[:n_pairs, 1]
        self.fsrc = {f: self.truth[f][self.src] for f in self.cat}
        self.ftgt = {f: self.truth[f][self.tgt] for f in self.cat}

    def describe(self, names) -> str:
        return (f"editing {names}; {len(self.src)} source/target pairs differing in {_words(self.cat)}, "
                f"neighbours among {len(self.bank_images)} train images, k={self.k}, threshold={self.threshold}, "
                f"activity quantile {self.quantile}")

    def edit(self, name: str) -> Edited:
        run = self.run
        h_bank = run.encode(name, self.bank_images)                       # [B, d]
        tol = activity_tolerance(h_bank, self.quantile)                   # [d]
        h_src, h_tgt = run.encode(name, self.images[self.src]), run.encode(name, self.images[self.tgt])
        idx, sel = neighbour_dims(h_src, h_bank, k=self.k, threshold=self.threshold, tol=tol)
        _, sel_t = neighbour_dims(h_tgt, h_bank, k=self.k, threshold=self.threshold, tol=tol)
        edits = {"unedited": h_src, "zero common": zero_dims(h_src, sel.common),
                 "zero rare": zero_dims(h_src, sel.rare), "copy common": copy_dims(h_src, h_tgt,
                                                                                   sel.common | sel_t.common)}
        return Edited(h_bank, tol, idx, sel, edits)

    def decode(self, name: str, res: Edited) -> None:
        res.samples = decode_edits(self.run, name, res.edits, n_per=self.n_per, steps=self.steps, seed=self.seed,
                                   sampler=self.sampler)
        res.pred = {e: self.factors.read(x) for e, x in res.samples.items()}

    def readings(self, res: Edited) -> dict[str, dict]:
        """{edit: {factor: {"changed", "decoded": follow rates, "rep": follow rates of the edited vector's k
        nearest bank images}}}."""
        out = {}
        for e in res.edits:
            decoded = follow_rates(res.pred[e], self.fsrc, self.ftgt, self.cat)
            _, nn_idx = knn(res.edits[e], res.h_bank, k=self.k)
            rep = follow_rates({f: self.bank_truth[f][nn_idx] for f in self.cat}, self.fsrc, self.ftgt, self.cat)
            agree = factor_agreement(res.pred[e], res.pred["unedited"], self.factors.by_name(self.cat))
            out[e] = {f: dict(changed=1 - float(agree[f].float().mean()), decoded=decoded[f], rep=rep[f])
                      for f in self.cat}
        return out

    def algebra(self, name: str, n_triplets: int) -> dict:
        roles, run = self.factors.roles, self.run
        trip = swap_triplets(self.truth, n_triplets, content=roles.content, swap=roles.swap, seed=self.seed)
        fa, fc = ({f: self.truth[f][trip[:, j]] for f in self.truth} for j in (0, 2))
        ha, hb, hc = (run.encode(name, self.images[trip[:, j]]) for j in range(3))
        x = decode_edits(run, name, {"a": ha, "a - b + c": representation_algebra(ha, hb, hc)}, n_per=self.n_per,
                         steps=self.steps, seed=self.seed, sampler=self.sampler)
        pred = {n: self.factors.read(v) for n, v in x.items()}
        checks = [(f"{WORD.get(roles.swap, roles.swap)} of c", roles.swap, fc), (f"{roles.content[0]} of a",
                                                                                 roles.content[0], fa)]
        return dict(triplets=trip, samples=x, fractions={f"{n}: {what}": float((pred[n][f] == ref[f][:, None])
                                                                              .float().mean())
                                                         for n in x for what, f, ref in checks})

    def widget_panels(self, name: str, n_images: int, thresholds, res: Edited | None, scale: int):
        """Panels [source][target][threshold] (uint8) and the menus of rcdm_lib.widgets.image_menus."""
        run, n_per = self.run, self.n_per
        w_src, w_tgt = self.pairs[:n_images, 0], self.pairs[:n_images, 1]
        h_bank = res.h_bank if res else run.encode(name, self.bank_images)
        tol = res.tol if res else activity_tolerance(h_bank, self.quantile)
        hs, ht = run.encode(name, self.images[w_src]), run.encode(name, self.images[w_tgt])    # [W, d]
        reps = {"unedited": hs}
        for t in thresholds:
            _, s_sel = neighbour_dims(hs, h_bank, k=self.k, threshold=t, tol=tol)
            _, t_sel = neighbour_dims(ht, h_bank, k=self.k, threshold=t, tol=tol)
            reps[f"zero {t}"] = zero_dims(hs, s_sel.common)
            # every (source i, target j): [W * W, d], row i * W + j
            reps[f"copy {t}"] = copy_dims(hs.repeat_interleave(len(w_tgt), 0), ht.repeat(len(w_src), 1),
                                          s_sel.common.repeat_interleave(len(w_tgt), 0)
                                          | t_sel.common.repeat(len(w_src), 1))
        wx = decode_edits(run, name, reps, n_per=n_per, steps=self.steps, seed=self.seed, sampler=self.sampler)
        view_s, view_t = run.rcdm_view(self.images[w_src]), run.rcdm_view(self.images[w_tgt])

        def panel(i, j, t):
            cols = [view_s[i].expand(n_per, -1, -1, -1), view_t[j].expand(n_per, -1, -1, -1), wx["unedited"][i],
                    wx[f"zero {t}"][i], wx[f"copy {t}"][i * len(w_tgt) + j]]
            return image_grid(torch.stack(cols, 1).flatten(0, 1), nrow=len(cols), scale=scale)

        panels = [[[panel(i, j, t) for t in thresholds] for j in range(len(w_tgt))] for i in range(len(w_src))]
        menus = [("source", [f"test image {int(i)}" for i in w_src]), ("target", [f"test image {int(j)}" for j in w_tgt]),
                 ("threshold", [f"{t} of {self.k}" for t in thresholds])]
        return panels, menus

    # ------------------------------------------------------------------ the page
    def print_readings(self, tables: dict[str, dict]) -> None:
        print(f"[{self.run.profile} scale] factor readings of {len(self.src)} sources x {self.n_per} samples. "
              "changed: the reading of the edited sample differs from that of the unedited sample with the same "
              "noise; to target / to source: reads the target's / source's value. In representation space (no "
              "RCDM): the same fractions over the k nearest train images of the edited vector.")
        for name, t in tables.items():
            print(f"\n{name}\n{'':14s}" + "".join(f"{f:^33s}" for f in self.cat))
            print(f"{'edit':14s}" + "   changed  tgt  src | rep tgt  src" * len(self.cat))
            for e, row in t.items():
                print(f"{e:14s}" + "".join(f"   {row[f]['changed']:7.2f} {row[f]['decoded']['target']:4.2f} "
                                           f"{row[f]['decoded']['source']:4.2f} |     {row[f]['rep']['target']:4.2f} "
                                           f"{row[f]['rep']['source']:4.2f}" for f in self.cat))

    def record(self, tables: dict[str, dict], algebra: dict[str, dict]) -> list[str]:
        """Record every edit's numbers and the three verdicts (copy, zero, algebra); returns the lines to print."""
        run, cat, swap = self.run, self.cat, self.factors.roles.swap
        key = f"{WORD.get(swap, swap)} of c"
        for name, t in tables.items():
            for f in cat:
                run.record("manipulation", f"{name}/copy_{f}_to_target", t["copy common"][f]["decoded"]["target"],
                           f"{name}: decoded samples reading the target's {f} after copying the most common dims "
                           f"(unedited: {t['unedited'][f]['decoded']['target']:.2f})")
            for e, what in (("zero common", "zero_common"), ("zero rare", "zero_rare")):
                run.record("manipulation", f"{name}/{what}_changed", float(np.mean([t[e][f]["changed"] for f in cat])),
                           f"{name}: {_words(cat)} readings changed by zeroing the "
                           f"{'most' if e == 'zero common' else 'least'} common dims (mean over the {len(cat)})")
            fr = algebra[name]["fractions"]
            run.record("manipulation", f"{name}/algebra_{swap}", fr[f"a - b + c: {key}"],
                       f"{name}: samples of h(a) - h(b) + h(c) reading c's {WORD.get(swap, swap)} "
                       f"(samples of h(a): {fr[f'a: {key}']:.2f})")
        # each edit against its baseline: the unedited samples, the rare dimensions, the samples of h(a); over the
        # run's own representations (not the models shown beside them)
        tables, algebra = run.for_verdict(tables), run.for_verdict(algebra)
        verdicts = {
            "copy": claims.verdict_from_comparisons(
                {f"{n} {f}": (t["copy common"][f]["decoded"]["target"], t["unedited"][f]["decoded"]["target"])
                 for n, t in tables.items() for f in cat}, expect="higher",
                what="the fraction of samples reading the target's factor after copying the most common dims",
                against="before the edit", paper="copying brings the target's object or background in (Fig. 6, 32)"),
            "zero": claims.verdict_from_comparisons(
                {n: (float(np.mean([t["zero common"][f]["changed"] for f in cat])),
                     float(np.mean([t["zero rare"][f]["changed"] for f in cat]))) for n, t in tables.items()},
                expect="higher", what="the fraction of readings changed by zeroing the most common dims",
                against="by zeroing the least common", paper="the most common dims matter, the least common much "
                                                            "less (Fig. 6, 31)"),
            "algebra": claims.verdict_from_comparisons(
                {n: (a["fractions"][f"a - b + c: {key}"], a["fractions"][f"a: {key}"]) for n, a in algebra.items()},
                expect="higher", what=f"the fraction of samples of h(a) - h(b) + h(c) reading c's "
                                      f"{WORD.get(swap, swap)}",
                against="samples of h(a)", paper=f"the algebra swaps the {WORD.get(swap, swap)} (Fig. 33)"),
        }
        lines = []
        for part, verdict in verdicts.items():
            run.record_verdict("manipulation", verdict, part=part)
            lines.append(f"[{run.profile} scale] {part}: {verdict}")
        return lines


# ------------------------------------------------------------------ figures

def plot_neighbours(study: ManipulationStudy, edited: dict[str, Edited], n_show: int, scale: int):
    import matplotlib.pyplot as plt

    k, names = study.k, list(edited)
    fig, axes = plt.subplots(1, len(names), figsize=(1.0 * (k + 1) * len(names), 1.1 * n_show + 0.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        idx = edited[name].idx
        rows = torch.cat([study.images[study.src[:n_show]].unsqueeze(1), study.bank_images[idx[:n_show]]], 1)
        ax.imshow(image_grid(rows.flatten(0, 1), nrow=k + 1, scale=max(1, scale // 2)))
        share = {f: float((study.bank_truth[f][idx] == study.fsrc[f][:, None]).float().mean()) for f in study.cat}
        ax.set_title(f"{name}: source | {k} nearest train images\nneighbours sharing the source's "
                     + ", ".join(f"{f} {v:.2f}" for f, v in share.items()), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_dimension_counts(study: ManipulationStudy, edited: dict[str, Edited]):
    import matplotlib.pyplot as plt

    k, threshold = study.k, study.threshold
    fig, axes = plt.subplots(1, len(edited), figsize=(5 * len(edited), 3.0), squeeze=False)
    for ax, (name, res) in zip(axes[0], edited.items()):
        sel = res.sel
        c = sel.counts[0].sort(descending=True).values.numpy()
        colour = np.where(c >= threshold, "tab:red", np.where(c <= k - threshold, "tab:blue", "tab:gray"))
        ax.bar(np.arange(len(c)), c, color=colour, width=1.0)
        ax.axhline(threshold - 0.5, color="tab:red", lw=0.8, ls="--")
        ax.axhline(k - threshold + 0.5, color="tab:blue", lw=0.8, ls="--")
        ax.set_title(f"{name}, source 0: most common (red) {int(sel.common[0].sum())},\nleast common (blue) "
                     f"{int(sel.rare[0].sum())} of {len(c)} dims (mean over sources: "
                     f"{sel.common.sum(1).float().mean():.1f} and {sel.rare.sum(1).float().mean():.1f})", fontsize=8)
        ax.set_xlabel("dimension (sorted by count)", fontsize=8)
        ax.set_ylabel(f"active in # of {k} neighbours", fontsize=8)
    fig.tight_layout()
    return fig


def plot_decoded(study: ManipulationStudy, edited: dict[str, Edited], n_show: int, scale: int):
    import matplotlib.pyplot as plt

    run, n_per = study.run, study.n_per
    edits = list(next(iter(edited.values())).edits)
    fig, axes = plt.subplots(len(edited), 1, figsize=(0.75 * (2 + len(edits) * n_per), 0.85 * n_show * len(edited)
                                                      + 0.6), squeeze=False)
    for ax, (name, res) in zip(axes[:, 0], edited.items()):
        rows = torch.cat([run.rcdm_view(study.images[study.src[:n_show]]).unsqueeze(1),
                          run.rcdm_view(study.images[study.tgt[:n_show]]).unsqueeze(1)]
                         + [res.samples[e][:n_show] for e in edits], 1)
        ax.imshow(image_grid(rows.flatten(0, 1), nrow=2 + len(edits) * n_per, scale=scale))
        ax.set_title(f"{name}: source | target | " + " | ".join(f"{e} (x{n_per})" for e in edits), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_algebra(study: ManipulationStudy, algebra: dict[str, dict], n_show: int, scale: int):
    import matplotlib.pyplot as plt

    run, n_per = study.run, study.n_per
    fig, axes = plt.subplots(len(algebra), 1, figsize=(0.75 * (3 + 2 * n_per), 0.85 * n_show * len(algebra) + 0.6),
                             squeeze=False)
    for ax, (name, a) in zip(axes[:, 0], algebra.items()):
        trip, x = a["triplets"][:n_show], a["samples"]
        m = trip.shape[0]
        rows = torch.cat([run.rcdm_view(study.images[trip[:, j]]).unsqueeze(1) for j in range(3)]
                         + [x["a"][:m], x["a - b + c"][:m]], 1)
        ax.imshow(image_grid(rows.flatten(0, 1), nrow=3 + 2 * n_per, scale=scale))
        ax.set_title(f"{name}: a | b | c | h(a) (x{n_per}) | h(a) - h(b) + h(c) (x{n_per})", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig
