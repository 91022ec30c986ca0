"""Chapter 10's study (the paper's Fig. 5, 30): targeted FGSM on each representation's linear probe, and what RCDM
draws from the perturbed representation.

The paper's evidence is the decoding: RCDM samples of a supervised representation under attack turn into the
target class, those of self-supervised ones keep the object. So the verdict reads the decoded samples (with the
run's class reader) at fixed epsilons, beside how far the representation moved; the probe's flip epsilon is a
second, labelled number (probes on SSL representations have smaller margins, so it measures the probe as much as
the representation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rcdm_lib.analysis.adversarial import LinearProbe, fgsm_sweep
from rcdm_lib.viz import image_grid


@dataclass
class AttackSet:
    images: torch.Tensor      # [N, 3, E, E]: test images not of the target class
    labels: torch.Tensor      # [N]
    target: int
    class_names: list[str]

    @property
    def target_name(self) -> str:
        return self.class_names[self.target]


def attack_set(run, target_class: str | None, n_attack: int) -> AttackSet:
    """Up to n_attack test images of another class than `target_class` (a class of the run's data; None: its last)."""
    split = run.data.split("test")
    names = list(split.label_names)
    target_class = target_class or names[-1]
    if target_class not in names:
        raise ValueError(f"target_class {target_class!r} is not a class of this run's data; expected one of {names}")
    t = names.index(target_class)
    pool = split.batch(range(min(4 * n_attack, len(split))))
    keep = (pool.labels != t).nonzero().flatten()[:n_attack]
    return AttackSet(pool.images[keep], pool.labels[keep], t, names)


def epsilon_grid(eps_max: float, n_eps: int, *extra) -> torch.Tensor:
    """linspace(0, eps_max, n_eps) with the epsilons of `extra` lists added, sorted."""
    values = set(np.round(np.linspace(0, eps_max, n_eps), 6))
    for e in extra:
        values |= set(np.round(e, 6))
    return torch.tensor(sorted(values), dtype=torch.float32)


def attack(run, slots, atk: AttackSet, epsilons, probe_train: int) -> tuple[dict, dict]:
    """({slot: FGSMSweep}, {slot: clean accuracy of its probe}) for probes fitted on probe_train train images."""
    train = run.data.split("train").batch(range(probe_train))
    sweeps, clean = {}, {}
    for slot in slots:
        probe = LinearProbe.fit(run.encode(slot, train.images), train.labels, num_classes=len(atk.class_names))
        clean[slot] = float((probe(run.encode(slot, atk.images)).argmax(1) == atk.labels).float().mean())
        sweeps[slot] = fgsm_sweep(run.encoder(slot), probe, atk.images.to(run.device), atk.target, epsilons)
    return sweeps, clean


def decodings(run, reader, slots, atk: AttackSet, sweeps: dict, eps_decode, n_decode: int, n_per: int, steps: int,
              seed: int) -> dict:
    """{(slot, eps): {"displacement": mean ||h(x_adv) - h(x)|| / ||h(x)||, "target_rate": fraction of RCDM samples of
    h(x_adv) the class reader reads as the target}} over the first n_decode attacked images."""
    out = {}
    for slot in slots:
        sw = sweeps[slot]
        h0 = run.encode(slot, atk.images[:n_decode])
        for eps in eps_decode:
            c = int((sw.epsilons - eps).abs().argmin())
            h = run.encode(slot, sw.images[c, :n_decode])
            x = run.sample(slot, h, n_per=n_per, steps=steps, seed=seed)                 # [n, K, 3, S, S]
            read = reader.predict(x.flatten(0, 1))
            out[slot, float(eps)] = {"displacement": float(((h - h0).norm(dim=1) / h0.norm(dim=1)).mean()),
                                     "target_rate": float((read == atk.target).float().mean())}
    return out


def plot_flip_curves(run, sweeps: dict, atk: AttackSet, title: str):
    """The fraction of attacked images the probe reads as the target, against epsilon, per representation
    (supervised: thick; projectors: dashed; backbones: dotted)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for slot, sw in sweeps.items():
        rep = run.representations[slot]
        ax.plot(sw.epsilons, (sw.predictions == atk.target).float().mean(1),
                "-" if rep.supervised else ("--" if rep.layer == "head" else ":"), label=slot,
                lw=2 if rep.supervised else 1.2)
    ax.set_xlabel("FGSM epsilon ([-1, 1] image units)")
    ax.set_ylabel(f"fraction predicted {atk.target_name!r}")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_decodings(run, slots, atk: AttackSet, sweeps: dict, eps_show, show_image: int, n_per: int, steps: int,
                   seed: int, scale: int):
    """Per representation: the perturbed image at each epsilon (titled with the probe's reading, red when it is the
    target), and below it RCDM samples of its representation; the initial noise is shared along a row."""
    import matplotlib.pyplot as plt

    E = run.encoder_size
    cols = [int((sweeps[slots[0]].epsilons - e).abs().argmin()) for e in eps_show]
    fig, axes = plt.subplots(2 * len(slots), len(cols), figsize=(1.25 * len(cols), 1.1 * (1 + n_per) * len(slots)),
                             squeeze=False, gridspec_kw={"height_ratios": [1, n_per] * len(slots)})
    for i, slot in enumerate(slots):
        sw = sweeps[slot]
        for j, c in enumerate(cols):
            x_adv = sw.images[c, show_image:show_image + 1]
            rcdm = run.sample(slot, run.encode(slot, x_adv), n_per=n_per, steps=steps, seed=seed)[0]
            pred = int(sw.predictions[c, show_image])
            top, bottom = axes[2 * i, j], axes[2 * i + 1, j]
            top.imshow(image_grid(x_adv, nrow=1, scale=scale))
            top.set_title(f"eps {float(sw.epsilons[c]):.2f}: {atk.class_names[pred]}", fontsize=7,
                          color="red" if pred == atk.target else "black")
            bottom.imshow(image_grid(F.interpolate(rcdm, size=(E, E), mode="nearest"), nrow=1, scale=scale))
            top.axis("off")
            bottom.axis("off")
        axes[2 * i, 0].text(-0.1, 0.5, slot, transform=axes[2 * i, 0].transAxes, ha="right", va="center", fontsize=7)
        axes[2 * i + 1, 0].text(-0.1, 0.5, "RCDM", transform=axes[2 * i + 1, 0].transAxes, ha="right", va="center",
                                fontsize=7)
    fig.suptitle(f"true class {atk.class_names[int(atk.labels[show_image])]!r}, target {atk.target_name!r}: "
                 "perturbed image (probe prediction) and RCDM samples", fontsize=9)
    fig.tight_layout()
    return fig
