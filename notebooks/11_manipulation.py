# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 11. Manipulating representations: removing, copying and adding dimensions
#
# **The paper's claims** (Fig. 6, 31-33): the dimensions that are non-zero in most of the
# k nearest neighbours of an image ("most common") carry what the neighbourhood shares.
# Setting them to zero removes it from the RCDM samples, copying them from another image's
# representation brings that image's version in, and the least common dimensions matter
# much less. Representation algebra $h(a) - h(b) + h(c)$, with $b$ and $c$ the same object
# on two backgrounds, moves $a$'s object onto $c$'s background.
#
# The built-in data has known factors, so every edit gets a number: a factor probe trained on
# real images (as in chapter 8) reads shape, colour and background off every decoded sample.
# The same question is also asked in representation space, without RCDM: which factors do
# the nearest training images of the edited vector share with the source or the target?
#
# **Rule for "non-zero" here** (`rcdm_lib.analysis.manipulation`): a ResNet-50 trunk is an
# average of post-ReLU maps and many of its features are exactly 0, so at `imagenet128` the
# paper's rule is used (`activity_quantile = None`: active when |h| > 1e-6). The tiny
# encoders' backbones are dense (3-7% exact zeros on the built-in data), so there a
# dimension counts as active in an image when it is above that dimension's
# `activity_quantile` over the neighbour bank. "Least common" dimensions are inactive in
# at least `threshold` of the k neighbours; with threshold > k/2 the two sets are disjoint.
# The copy edit gives the target's values to the dimensions most common in either image's
# neighbourhood: what the source's neighbours share goes out, what the target's share comes in.

# %% tags=["parameters"]
profile = "smoke"          # run profile (_config.yml): smoke, tiny or imagenet128
settings = None          # the merged settings file (profile + your --config); the pipeline sets it
results_dir = "_results"   # where the numbers for the Claims page go
slots = None               # representations edited (None: the supervised backbone and the first SSL backbone)
n_bank = 512               # training images: the neighbour bank (and the activity quantiles)
k = 10                     # nearest neighbours
threshold = 8              # most common: active in at least this many neighbours; least common: inactive in as many
activity_quantile = 0.5    # active: above this per-dimension quantile of the bank (None: non-zero, as in the paper)
n_pairs = 8                # source/target pairs (test split, differing in shape, colour and background)
n_triplets = 4             # background-swap triplets (a, b, c)
n_show = 3                 # of which shown in the figures
n_per = 2                  # samples per edited representation
probe_train = 512          # real training images for the factor probe
probe_encoder = "supervised_backbone"   # probe features: pixels + this encoder's (None: pixels only)
widget_slot = None         # representation of the widget (None: the first SSL slot edited)
widget_images = 3          # sources and targets offered by the widget
widget_thresholds = [6, 8, 10]
steps = 10                 # sampling steps
sampler = "ddim"           # ddim (deterministic: the edits of an image differ only by the edit) or ancestral
scale = 6                  # nearest-neighbour upscaling of the figures
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from rcdm_lib import claims
from rcdm_lib.analysis.manipulation import (activity_tolerance, background_swap_triplets, contrasting_pairs,
                                            copy_dims, decode_edits, follow_rates, neighbour_dims,
                                            representation_algebra, zero_dims)
from rcdm_lib.data import FACTORS, FactorShapes
from rcdm_lib.metrics import FactorProbe, encoder_view, factor_agreement, knn, pixel_features
from rcdm_lib.models import load_profile_models
from rcdm_lib.viz import image_grid
from rcdm_lib.widgets import image_menus

NOTEBOOK = "11_manipulation"
CAT = ("shape", "color", "background")
models = load_profile_models(settings or profile)
d = models.profile["data"]
E = d["size"]
if slots is None:
    ssl = [s for s in models.slots if s.endswith("_backbone") and not s.startswith("supervised")]
    slots = [s for s in ["supervised_backbone"] + ssl[:1] if s in models.slots]
test = FactorShapes("test", size=E, length=d["lengths"]["test"], seed=d["seed"])
test_images, test_factors = test.all_uint8()
test_images = test_images.float() / 127.5 - 1
bank_images, bank_factors = FactorShapes("train", size=E, length=d["lengths"]["train"], seed=d["seed"]).batch(
    list(range(n_bank)))
pairs = contrasting_pairs(test_factors, max(n_pairs, widget_images), names=CAT, seed=seed)       # [P, 2]
src, tgt = pairs[:n_pairs, 0], pairs[:n_pairs, 1]
fsrc = {f: test_factors[f][src] for f in CAT}
ftgt = {f: test_factors[f][tgt] for f in CAT}


def probe_features(x):         # x at the RCDM resolution; the encoder sees the S -> E round trip
    f = pixel_features(x)
    return f if probe_encoder is None else torch.cat([f, models.encode(probe_encoder, encoder_view(x, E))], 1)


probe_images, probe_factors = FactorShapes("train", size=E, length=d["lengths"]["train"], seed=d["seed"]).batch(
    list(range(probe_train)))
probe = FactorProbe(probe_features).fit(models.rcdm_view(probe_images), probe_factors)
print(f"profile {profile!r}: editing {slots}; {n_pairs} source/target pairs, neighbours among {n_bank} train images, "
      f"k={k}, threshold={threshold}, activity quantile {activity_quantile}")
print("factor probe on held-out real images (the reader's ceiling): " + ", ".join(
    f"{f} {v['value']:.2f}" for f, v in probe.score(models.rcdm_view(test_images[:256]),
                                                      {f: test_factors[f][:256] for f in test_factors}).items()
    if f in CAT))

# %% [markdown]
# ## Neighbours and the dimensions they share

# %%
res = {}
for slot in slots:
    h_bank = models.encode(slot, bank_images)                       # [P, d]
    tol = activity_tolerance(h_bank, activity_quantile)            # [d]
    h_src, h_tgt = models.encode(slot, test_images[src]), models.encode(slot, test_images[tgt])
    idx, sel = neighbour_dims(h_src, h_bank, k=k, threshold=threshold, tol=tol)
    _, sel_t = neighbour_dims(h_tgt, h_bank, k=k, threshold=threshold, tol=tol)
    edits = {"unedited": h_src, "zero common": zero_dims(h_src, sel.common), "zero rare": zero_dims(h_src, sel.rare),
             "copy common": copy_dims(h_src, h_tgt, sel.common | sel_t.common)}
    res[slot] = dict(h_bank=h_bank, tol=tol, idx=idx, sel=sel, sel_t=sel_t, edits=edits)

fig, axes = plt.subplots(1, len(slots), figsize=(1.0 * (k + 1) * len(slots), 1.1 * n_show + 0.8), squeeze=False)
for ax, slot in zip(axes[0], slots):
    rows = torch.cat([test_images[src[:n_show]].unsqueeze(1), bank_images[res[slot]["idx"][:n_show]]], 1)
    ax.imshow(image_grid(rows.flatten(0, 1), nrow=k + 1, scale=max(1, scale // 2)))
    share = {f: float((bank_factors[f][res[slot]["idx"]] == fsrc[f][:, None]).float().mean()) for f in CAT}
    ax.set_title(f"{slot}: source | {k} nearest train images\nneighbours sharing the source's "
                 + ", ".join(f"{f} {v:.2f}" for f, v in share.items()), fontsize=8)
    ax.axis("off")
plt.tight_layout()
plt.show()

fig, axes = plt.subplots(1, len(slots), figsize=(5 * len(slots), 3.0), squeeze=False)
for ax, slot in zip(axes[0], slots):
    sel = res[slot]["sel"]
    c = sel.counts[0].sort(descending=True).values.numpy()
    colour = np.where(c >= threshold, "tab:red", np.where(c <= k - threshold, "tab:blue", "tab:gray"))
    ax.bar(np.arange(len(c)), c, color=colour, width=1.0)
    ax.axhline(threshold - 0.5, color="tab:red", lw=0.8, ls="--")
    ax.axhline(k - threshold + 0.5, color="tab:blue", lw=0.8, ls="--")
    ax.set_title(f"{slot}, source 0: most common (red) {int(sel.common[0].sum())},\nleast common (blue) "
                 f"{int(sel.rare[0].sum())} of {len(c)} dims (mean over sources: "
                 f"{sel.common.sum(1).float().mean():.1f} and {sel.rare.sum(1).float().mean():.1f})", fontsize=8)
    ax.set_xlabel("dimension (sorted by count)", fontsize=8)
    ax.set_ylabel(f"active in # of {k} neighbours", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Decoded edits (Fig. 6, 31-33)
#
# Each row: source | target | samples of the source's representation as is, with its most
# common dimensions zeroed, with its least common dimensions zeroed, and with the most common
# dimensions copied from the target. The j-th sample of every edit starts from the same noise.

# %%
for slot in slots:
    r = res[slot]
    r["samples"] = decode_edits(models, slot, r["edits"], n_per=n_per, steps=steps, seed=seed, sampler=sampler)
    r["pred"] = {name: probe.predict(x) for name, x in r["samples"].items()}

names = list(res[slots[0]]["edits"])
fig, axes = plt.subplots(len(slots), 1, figsize=(0.75 * (2 + len(names) * n_per), 0.85 * n_show * len(slots) + 0.6),
                         squeeze=False)
for ax, slot in zip(axes[:, 0], slots):
    x = res[slot]["samples"]
    rows = torch.cat([models.rcdm_view(test_images[src[:n_show]]).unsqueeze(1),
                      models.rcdm_view(test_images[tgt[:n_show]]).unsqueeze(1)]
                     + [x[n][:n_show] for n in names], 1)
    ax.imshow(image_grid(rows.flatten(0, 1), nrow=2 + len(names) * n_per, scale=scale))
    ax.set_title(f"{slot}: source | target | " + " | ".join(f"{n} (x{n_per})" for n in names), fontsize=8)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %%
print(f"[{profile} scale] factor readings of {n_pairs} sources x {n_per} samples. changed: the probe's reading of "
      "the edited sample differs from that of the unedited sample with the same noise; to target / to source: "
      "reads the target's / source's value. In representation space (no RCDM): the same fractions over the k "
      "nearest train images of the edited vector.")
table = {}
for slot in slots:
    r = res[slot]
    t = table[slot] = {}
    for name in names:
        decoded = follow_rates(r["pred"][name], fsrc, ftgt, CAT)
        _, nn_idx = knn(r["edits"][name], r["h_bank"], k=k)
        rep = follow_rates({f: bank_factors[f][nn_idx] for f in CAT}, fsrc, ftgt, CAT)
        agree = factor_agreement(r["pred"][name], r["pred"]["unedited"], [f for f in FACTORS if f.name in CAT])
        t[name] = {f: dict(changed=1 - float(agree[f].float().mean()), decoded=decoded[f], rep=rep[f]) for f in CAT}
    print(f"\n{slot}\n{'':14s}" + "".join(f"{f:^33s}" for f in CAT))
    print(f"{'edit':14s}" + "   changed  tgt  src | rep tgt  src" * len(CAT))
    for name in names:
        cells = [(t[name][f]["changed"], t[name][f]["decoded"], t[name][f]["rep"]) for f in CAT]
        print(f"{name:14s}" + "".join(f"   {c:7.2f} {dec['target']:4.2f} {dec['source']:4.2f} |     "
                                      f"{rep['target']:4.2f} {rep['source']:4.2f}" for c, dec, rep in cells))

# %% [markdown]
# ## Representation algebra: swapping the background
#
# $b$ is another object on $a$'s background and $c$ is $b$'s object (same shape and colour)
# on another background, so $h(c) - h(b)$ is "change the background". Each row: a | b | c |
# samples of $h(a)$ | samples of $h(a) - h(b) + h(c)$.

# %%
trip = background_swap_triplets(test_factors, n_triplets, seed=seed)      # [T, 3] (a, b, c)
fa, fc = ({f: test_factors[f][trip[:, j]] for f in CAT} for j in (0, 2))
algebra = {}
for slot in slots:
    ha, hb, hc = (models.encode(slot, test_images[trip[:, j]]) for j in range(3))
    x = decode_edits(models, slot, {"a": ha, "a - b + c": representation_algebra(ha, hb, hc)}, n_per=n_per,
                     steps=steps, seed=seed, sampler=sampler)
    pred = {n: probe.predict(v) for n, v in x.items()}
    algebra[slot] = dict(samples=x, **{f"{n}: {what}": float((pred[n][f] == ref[f][:, None]).float().mean())
                                        for n in x for what, f, ref in [("background of c", "background", fc),
                                                                        ("shape of a", "shape", fa)]})
m = min(n_show, n_triplets)
fig, axes = plt.subplots(len(slots), 1, figsize=(0.75 * (3 + 2 * n_per), 0.85 * m * len(slots) + 0.6), squeeze=False)
for ax, slot in zip(axes[:, 0], slots):
    x = algebra[slot]["samples"]
    rows = torch.cat([models.rcdm_view(test_images[trip[:m, j]]).unsqueeze(1) for j in range(3)]
                     + [x["a"][:m], x["a - b + c"][:m]], 1)
    ax.imshow(image_grid(rows.flatten(0, 1), nrow=3 + 2 * n_per, scale=scale))
    ax.set_title(f"{slot}: a | b | c | h(a) (x{n_per}) | h(a) - h(b) + h(c) (x{n_per})", fontsize=8)
    ax.axis("off")
plt.tight_layout()
plt.show()
print(f"[{profile} scale] fraction of samples ({n_triplets} triplets x {n_per}) whose probe reading is")
for slot in slots:
    print(f"  {slot:22s} " + ", ".join(f"{key} {v:.2f}" for key, v in algebra[slot].items() if key != "samples"))

# %% [markdown]
# ## Pick a source, a target and a threshold
#
# The panels are precomputed for every combination; the menus work in the static book
# without a kernel. Each row is one sample: source | target | as is | most common zeroed |
# most common copied from the target.

# %%
wslot = widget_slot or next((s for s in slots if not s.startswith("supervised")), slots[0])
w_src, w_tgt = pairs[:widget_images, 0], pairs[:widget_images, 1]
r = res[wslot] if wslot in res else None
h_bank = r["h_bank"] if r else models.encode(wslot, bank_images)
tol = r["tol"] if r else activity_tolerance(h_bank, activity_quantile)
hs, ht = models.encode(wslot, test_images[w_src]), models.encode(wslot, test_images[w_tgt])    # [W, d]
reps = {"unedited": hs}
for t in widget_thresholds:
    _, s_sel = neighbour_dims(hs, h_bank, k=k, threshold=t, tol=tol)
    _, t_sel = neighbour_dims(ht, h_bank, k=k, threshold=t, tol=tol)
    reps[f"zero {t}"] = zero_dims(hs, s_sel.common)
    # every (source i, target j): [W * W, d], row i * W + j
    reps[f"copy {t}"] = copy_dims(hs.repeat_interleave(len(w_tgt), 0), ht.repeat(len(w_src), 1),
                                  s_sel.common.repeat_interleave(len(w_tgt), 0) | t_sel.common.repeat(len(w_src), 1))
wx = decode_edits(models, wslot, reps, n_per=n_per, steps=steps, seed=seed, sampler=sampler)
view_s, view_t = models.rcdm_view(test_images[w_src]), models.rcdm_view(test_images[w_tgt])


def panel(i, j, t):
    cols = [view_s[i].expand(n_per, -1, -1, -1), view_t[j].expand(n_per, -1, -1, -1), wx["unedited"][i],
            wx[f"zero {t}"][i], wx[f"copy {t}"][i * len(w_tgt) + j]]
    return image_grid(torch.stack(cols, 1).flatten(0, 1), nrow=len(cols), scale=scale)


print(f"{wslot}: source | target | as is | most common zeroed | most common copied from the target")
panels = [[[panel(i, j, t) for t in widget_thresholds] for j in range(len(w_tgt))] for i in range(len(w_src))]
display(image_menus(panels,
                    [("source", [f"test image {int(i)}" for i in w_src]),
                     ("target", [f"test image {int(j)}" for j in w_tgt]),
                     ("threshold", [f"{t} of {k}" for t in widget_thresholds])]))

# %%
def record(key, value, description):
    claims.record(results_dir, NOTEBOOK, "manipulation", key, value, description, profile=profile)


for slot in slots:
    t = table[slot]
    for f in CAT:
        record(f"{slot}/copy_{f}_to_target", t["copy common"][f]["decoded"]["target"],
               f"{slot}: decoded samples reading the target's {f} after copying the most common dims "
               f"(unedited: {t['unedited'][f]['decoded']['target']:.2f})")
    for name, what in (("zero common", "zero_common"), ("zero rare", "zero_rare")):
        record(f"{slot}/{what}_changed", float(np.mean([t[name][f]["changed"] for f in CAT])),
               f"{slot}: shape/colour/background readings changed by zeroing the "
               f"{'most' if name == 'zero common' else 'least'} common dims (mean over the three)")
    record(f"{slot}/algebra_background", algebra[slot]["a - b + c: background of c"],
           f"{slot}: samples of h(a) - h(b) + h(c) reading c's background "
           f"(samples of h(a): {algebra[slot]['a: background of c']:.2f})")
# each edit against its baseline: the unedited samples, the rare dimensions, the samples of h(a)
verdicts = {
    "copy": claims.verdict_from_comparisons(
        {f"{slot} {f}": (table[slot]["copy common"][f]["decoded"]["target"],
                         table[slot]["unedited"][f]["decoded"]["target"]) for slot in slots for f in CAT},
        expect="higher", what="the fraction of samples reading the target's factor after copying the most common dims",
        against="before the edit", paper="copying brings the target's object or background in (Fig. 6, 32)"),
    "zero": claims.verdict_from_comparisons(
        {slot: (float(np.mean([table[slot]["zero common"][f]["changed"] for f in CAT])),
                float(np.mean([table[slot]["zero rare"][f]["changed"] for f in CAT]))) for slot in slots},
        expect="higher", what="the fraction of readings changed by zeroing the most common dims",
        against="by zeroing the least common", paper="the most common dims matter, the least common much less "
                                                    "(Fig. 6, 31)"),
    "algebra": claims.verdict_from_comparisons(
        {slot: (algebra[slot]["a - b + c: background of c"], algebra[slot]["a: background of c"]) for slot in slots},
        expect="higher", what="the fraction of samples of h(a) - h(b) + h(c) reading c's background",
        against="samples of h(a)", paper="the algebra swaps the background (Fig. 33)"),
}
for part, verdict in verdicts.items():
    claims.record_verdict(results_dir, NOTEBOOK, "manipulation", verdict, profile=profile, part=part)
    print(f"[{profile} scale] {part}: {verdict}")

# %% [markdown]
# **What this scale shows.** Under `smoke` the models are barely trained: samples are noise
# and every fraction is near chance; the notebook only proves the code path. Under `tiny`,
# the representation-space columns show what each edit does to the vector: the neighbours
# of a supervised backbone share the shape and those of an SSL backbone mostly the
# background and colour, so zeroing the most common dimensions removes exactly that and
# zeroing as many least common ones removes little. The decoded columns show whether RCDM
# turns the edit into the corresponding picture; the [Claims](claims.md) page records the
# copy, zero and algebra fractions with their unedited baselines.
