# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 4. FID and Inception Score (Table 2a)
#
# **The paper's claim** (Table 2a): RCDM conditioned on the representations of real
# validation images reaches a much lower FID than the unconditional model, and sampling the
# representation itself (Gaussian noise on training representations, or a kernel density
# estimate, "KDE*") turns RCDM into a competitive unconditional generator. The paper uses
# 10,000 samples against 10,000 ImageNet validation images with the standard Inception
# network.
#
# Which network extracts the features is part of every number. At `imagenet128` it is
# torch-fidelity's `inception-v3-compat`; at `smoke` and `tiny` there is no Inception (no
# downloads, 32px images), so the extractor is the project's supervised tiny encoder,
# registered with torch-fidelity (features: its backbone; IS logits: its classifier).
# **Tiny-scale numbers are not comparable with the paper's.**
#
# **The floor.** Two sets of real images of one distribution do not score FID 0: with n
# images per side the estimate has a floor, measured here as the FID between the reference
# images and the conditioning images (tiny: the val and test splits; an ImageFolder: two
# disjoint halves of `val/`). A conditional row counts as lower than the unconditional one
# only by more than that floor, and the verdict's rows are measured at a count where the
# floor is small. FIDs at different counts are not comparable, so each table says its count.
#
# The IC-GAN rows are the paper's GAN baseline (Casanova et al. 2021, `rcdm_lib/icgan`),
# conditioned on one representation (`icgan.slot`): on the real test representations, on
# IC-GAN's own unconditional recipe (training instances nearest to k-means centres), and on
# representations drawn from the same KDE as RCDM's "KDE*" rows.

# %% tags=["parameters"]
profile = "smoke"          # run profile (_config.yml): smoke, tiny or imagenet128
settings = None          # the merged settings file (profile + your --config); the pipeline sets it
results_dir = "_results"   # where the numbers for the Claims page go
n_verdict = 64             # samples per row of the verdict's table (backbones, unconditional, real-vs-real floor)
n_samples = 64             # samples per row of the other rows (projectors, sampled representations, IC-GAN)
n_train = 256              # training representations for the noise and KDE samplers
noise_std = 0.5            # Gaussian noise sampler, in units of the representations' RMS std
isc_splits = 4
steps = 10                 # sampling steps (ancestral unless a chapter says otherwise)
extractor = "tiny-supervised"   # "tiny-supervised" (project encoder) or "inception-v3-compat" (metrics.inception_weights)
sampler_slots = None       # representations with noise and KDE rows (None: all)
icgan_clusters = 8         # IC-GAN's k-means recipe: instances nearest to this many centres (official: 1000)
seed = 0

# %%
import matplotlib.pyplot as plt

from rcdm_lib.analysis.fid_study import FLOOR, FidStudy
from rcdm_lib.run import open_run
from rcdm_lib.viz import image_grid

run = open_run(settings or profile, chapter="04_fid_is", results_dir=results_dir)
study = FidStudy(run, extractor, steps=steps, seed=seed, isc_splits=isc_splits)
backbones = run.select(layer="backbone", beside=False)   # the verdict's rows; models beside go below
print(*filter(None, (run.describe(), study.describe(), run.missing("unconditional"), run.missing("icgan"))), sep="\n")

# %%
verdict_rows = study.rows(n_verdict, conditional=backbones, unconditional=True)
verdict_table = study.table(verdict_rows)
study.print_table(verdict_rows, verdict_table, "FID / IS of the verdict's rows")

# %%
others = study.rows(n_samples, conditional=[n for n in run.names if n not in backbones], unconditional=True,
                    samplers=run.names if sampler_slots is None else sampler_slots, n_train=n_train,
                    noise_std=noise_std, icgan_clusters=icgan_clusters)
study.print_table(others, study.table(others), "FID / IS of the other rows (not comparable with the table above)")

# %%
show = {k: v for k, v in verdict_rows.samples.items() if k != FLOOR}
fig, axes = plt.subplots(1, len(show), figsize=(2.6 * len(show), 2.8), squeeze=False)
for ax, (k, x) in zip(axes[0], show.items()):
    ax.imshow(image_grid(x[:16], nrow=4, scale=max(1, 64 // run.image_size)))
    ax.set_title(k.replace("RCDM | ", "").replace(", real representations", ""), fontsize=7)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %%
print(study.record_verdict(verdict_rows, verdict_table, backbones))

# %% [markdown]
# **What this scale shows.** Under `smoke` the models are barely trained and every FID is
# large; the notebook proves the code path, including torch-fidelity with a registered
# extractor. Under `tiny` the first table is a tiny-scale Table 2a at the sample count where the
# floor (two real sets of the same distribution) lies well below the gaps it judges: at 256
# samples the floor sits above the unconditional row and the conditional rows cannot be told
# from it, at 2,000 it is an order of magnitude lower. The verdict counts a conditional row as
# lower than the unconditional one only by more than the floor. The second table keeps the
# projectors, the sampled representations ("KDE*", the paper's RCDM as an unconditional
# generator) and IC-GAN at 256 samples; its numbers compare among themselves only. Under
# `imagenet128` the features are torch-fidelity's `inception-v3-compat` from
# `metrics.inception_weights`, the unconditional row is the ADM of `unconditional.checkpoint`,
# and the counts are the paper's 10,000.
