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
# Every edit gets a number: the run's factor reader (as in chapter 8) reads each decoded
# sample. On the built-in data those are the known factors (shape, colour, background), and
# the algebra's $b$ and $c$ are one object on two backgrounds; an ImageFolder knows only the
# class, so there the factors are the class and the measured dominant hue, and the algebra's
# $b$ and $c$ are one class in two colours. The same question is also asked in representation
# space, without RCDM: which factors do the nearest training images of the edited vector
# share with the source or the target?
#
# **Rule for "non-zero" here** (`rcdm_lib.analysis.manipulation`): a ResNet-50 trunk is an
# average of post-ReLU maps and many of its features are exactly 0, so at `imagenet128` the
# paper's rule is used (`activity_quantile = None`: active when |h| > 1e-6) with its k = 20
# neighbours. The tiny encoders' backbones are dense (3-7% exact zeros on the built-in data),
# so there a dimension counts as active in an image when it is above that dimension's
# `activity_quantile` over the neighbour bank. "Least common" dimensions are inactive in at
# least `threshold` of the k neighbours; with threshold > k/2 the two sets are disjoint. The
# copy edit gives the target's values to the dimensions most common in either image's
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
n_pool = None              # test images the pairs and triplets are chosen from (None: the whole test split)
n_pairs = 8                # source/target pairs (test split, differing in every contrasted factor)
n_triplets = 4             # algebra triplets (a, b, c)
n_show = 3                 # of which shown in the figures
n_per = 2                  # samples per edited representation
probe_train = 512          # real training images for the factor reader
widget_slot = None         # representation of the widget (None: the first SSL representation edited)
widget_images = 3          # sources and targets offered by the widget
widget_thresholds = [6, 8, 10]
steps = 10                 # sampling steps
sampler = "ddim"           # ddim (deterministic: the edits of an image differ only by the edit) or ancestral
scale = 6                  # nearest-neighbour upscaling of the figures
seed = 0

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from rcdm_lib.analysis.manipulation_study import (ManipulationStudy, default_names, plot_algebra, plot_decoded,
                                                  plot_dimension_counts, plot_neighbours)
from rcdm_lib.analysis.run_factors import run_factors
from rcdm_lib.run import open_run
from rcdm_lib.widgets import image_menus

run = open_run(settings or profile, chapter="11_manipulation", results_dir=results_dir)
names = default_names(run, slots)
factors = run_factors(run, n_train=probe_train)
study = ManipulationStudy(run, factors, n_bank, k, threshold, activity_quantile, n_pairs, n_pool=n_pool,
                          n_extra_pairs=widget_images, n_per=n_per, steps=steps, sampler=sampler, seed=seed)
print(run.describe(), factors.what, study.describe(names),
      factors.describe_score(run.data.split("test").batch(range(256))), sep="\n")

# %% [markdown]
# ## Neighbours and the dimensions they share

# %%
edited = {name: study.edit(name) for name in names}
plot_neighbours(study, edited, n_show, scale)
plot_dimension_counts(study, edited)
plt.show()

# %% [markdown]
# ## Decoded edits (Fig. 6, 31-33)
#
# Each row: source | target | samples of the source's representation as is, with its most
# common dimensions zeroed, with its least common dimensions zeroed, and with the most common
# dimensions copied from the target. The j-th sample of every edit starts from the same noise.

# %%
for name, res in edited.items():
    study.decode(name, res)
plot_decoded(study, edited, n_show, scale)
plt.show()
tables = {name: study.readings(res) for name, res in edited.items()}
study.print_readings(tables)

# %% [markdown]
# ## Representation algebra: swapping what b and c differ in
#
# $b$ is another object with $a$'s background (an ImageFolder: another class in $a$'s colour)
# and $c$ is $b$'s object with another one, so $h(c) - h(b)$ is "change the background"
# (the colour). Each row: a | b | c | samples of $h(a)$ | samples of $h(a) - h(b) + h(c)$.

# %%
algebra = {name: study.algebra(name, n_triplets) for name in names}
plot_algebra(study, algebra, min(n_show, n_triplets), scale)
plt.show()
print(f"[{run.profile} scale] fraction of samples ({n_triplets} triplets x {n_per}) whose reading is")
for name, a in algebra.items():
    print(f"  {name:22s} " + ", ".join(f"{key} {v:.2f}" for key, v in a["fractions"].items()))

# %% [markdown]
# ## Pick a source, a target and a threshold
#
# The panels are precomputed for every combination; the menus work in the static book
# without a kernel. Each row is one sample: source | target | as is | most common zeroed |
# most common copied from the target.

# %%
wname = widget_slot or next((n for n in names if not run.representations[n].supervised), names[0])
print(f"{wname}: source | target | as is | most common zeroed | most common copied from the target")
display(image_menus(*study.widget_panels(wname, widget_images, widget_thresholds, edited.get(wname), scale)))

# %%
print(*study.record(tables, algebra), sep="\n")

# %% [markdown]
# **What this scale shows.** Under `smoke` the models are barely trained: samples are noise
# and every fraction is near chance; the notebook only proves the code path. Under `tiny`,
# the representation-space columns show what each edit does to the vector: the neighbours
# of a supervised backbone share the shape and those of an SSL backbone mostly the
# background and colour, so zeroing the most common dimensions removes exactly that and
# zeroing as many least common ones removes little. The decoded columns show whether RCDM
# turns the edit into the corresponding picture; the [Claims](claims.md) page records the
# copy, zero and algebra fractions with their unedited baselines.
