# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 9. Class-mean conditioning and unconditional generation
#
# **The paper's claims** (Fig. 29): conditioning on the *mean* representation of a class
# gives samples of that class, showing what the class's representations share. (Fig. 21):
# RCDM becomes an unconditional generator when the representation itself is sampled:
# a training representation plus Gaussian noise, or a kernel density estimate (KDE*) of
# the training representations (`rcdm_lib.analysis.rep_samplers`). The built-in data's
# class is the object's shape.

# %% tags=["parameters"]
profile = "smoke"          # run profile (_config.yml): smoke, tiny or imagenet128
settings = None          # the merged settings file (profile + your --config); the pipeline sets it
results_dir = "_results"   # where the numbers for the Claims page go
n_train = 512              # training representations (class means, samplers)
n_classes_shown = 6        # classes in the class-mean figure
n_per = 4                  # samples per class mean
n_uncond = 8               # samples per unconditional sampler
noise_std = 0.5            # Gaussian noise sampler, in units of the representations' RMS std
slot = None                # representation of the figures (None: the first SSL backbone, else the first)
steps = 10                 # sampling steps (ancestral unless a chapter says otherwise)
scale = 6
seed = 0

# %%
import matplotlib.pyplot as plt
import torch

from rcdm_lib.analysis.rep_samplers import GaussianNoiseSampler, KDESampler, class_mean_representations
from rcdm_lib.run import open_run
from rcdm_lib.viz import image_grid

run = open_run(settings or profile)
slot = slot or (run.select(layer="backbone", supervised=False) + run.names)[0]
split = run.data.split("train")
train = split.batch(range(n_train))
h_train = run.encode(slot, train.images)
print(f"{run.describe()}\nrepresentation {slot}, {n_train} training representations")

# %% [markdown]
# ## Class-mean conditioning (Fig. 29)

# %%
present = train.labels.unique()                           # classes among the training images drawn
means = class_mean_representations(h_train, torch.searchsorted(present, train.labels))[:n_classes_shown]
shown = present[:n_classes_shown]
x = run.sample(slot, means, n_per=n_per, steps=steps, seed=seed)
fig, ax = plt.subplots(figsize=(1.0 * n_per + 1, 1.0 * len(shown)))
ax.imshow(image_grid(x.flatten(0, 1), nrow=n_per, scale=scale))
ax.set_yticks([(i + 0.5) * (x.shape[-1] * scale + 1) for i in range(len(shown))],
              [split.label_names[c] for c in shown], fontsize=8)
ax.set_xticks([])
ax.set_title(f"{slot}: samples of the class-mean representation ({profile} scale)", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Unconditional generation from sampled representations (Fig. 21)

# %%
g = torch.Generator().manual_seed(seed)
rows = {"Gaussian noise on train reps": run.sample(slot, GaussianNoiseSampler(h_train, std=noise_std).sample(n_uncond, g),
                                                   n_per=1, steps=steps, seed=seed)[:, 0],
        "KDE* of train reps": run.sample(slot, KDESampler(h_train).sample(n_uncond, g), n_per=1, steps=steps, seed=seed)[:, 0]}
if run.has_unconditional:   # the slot model's null condition, or the unconditional ADM at the paper's scale
    rows["unconditional"] = run.sample(None, n=n_uncond, n_per=1, steps=steps, seed=seed)[:, 0]
print(run.missing("unconditional") or "")
fig, axes = plt.subplots(len(rows), 1, figsize=(1.0 * n_uncond, 1.3 * len(rows)), squeeze=False)
for ax, (name, imgs) in zip(axes[:, 0], rows.items()):
    ax.imshow(image_grid(imgs, nrow=n_uncond, scale=scale))
    ax.set_title(name, fontsize=8)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# **What this scale shows.** Under `smoke` the samples are noise; the notebook proves the
# code path. Under `tiny`, each class-mean row should show its shape with varied colours
# and backgrounds (what the class's representations do not share), and the sampled
# representations should give images as varied as the data; chapter 4 measures their FID.
