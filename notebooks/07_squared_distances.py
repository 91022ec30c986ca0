# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 7. Squared distances to the conditioning representation
#
# **The paper's claim** (Fig. 22, 23): in representation space, RCDM samples land close to
# the representation that conditioned them: closer than random validation images, than
# images of the same class, and comparable to the nearest training neighbours and to
# augmented views of the conditioning image (two augmentation pipelines).
#
# Everything is encoded after the same S -> E round trip as the samples
# (`rcdm_lib.metrics.encoder_view`), so resolution is not what the distances measure.

# %% tags=["parameters"]
profile = "smoke"          # run profile (_config.yml): smoke, tiny or imagenet128
settings = None          # the merged settings file (profile + your --config); the pipeline sets it
results_dir = "_results"   # where the numbers for the Claims page go
n_images = 16              # conditioning images (test split)
n_per = 4                  # samples and augmented views per conditioning image
n_pool = 128               # validation images (random and same-class comparisons)
n_train = 256              # training images searched for nearest neighbours
steps = 10                 # sampling steps (ancestral unless a chapter says otherwise)
seed = 0

# %%
import matplotlib.pyplot as plt
import torch

from rcdm_lib import claims
from rcdm_lib.data import AugmentConfig, SSLAugment
from rcdm_lib.metrics import encoder_view, knn, pairwise_squared_distances, squared_distances_to
from rcdm_lib.run import open_run

run = open_run(settings or profile, chapter="07_squared_distances", results_dir=results_dir)
E = run.encoder_size
rt = lambda x: encoder_view(run.rcdm_view(x), E)      # noqa: E731  the S -> E round trip
test, val = run.data.split("test").batch(range(n_images)), run.data.split("val").batch(range(n_pool))
images, pool = test.images, val.images
train = run.data.split("train").batch(range(n_train)).images
pipelines = {"SimCLR augmentations": AugmentConfig(),
             "crop + flip only": AugmentConfig(crop_scale=(0.5, 1.0), jitter_p=0.0, gray_p=0.0)}
same_class = (test.labels[:, None] == val.labels[None]).float()      # [n_images, n_pool]
print(f"{run.describe()}\n{n_images} images, {n_per} samples/views each, {n_pool} validation, {n_train} training")

# %%
dist = {}
for slot in run.names:
    enc = lambda x, s=slot: run.encode(s, x)          # noqa: E731
    h = enc(images)                                      # the conditioning representation (as RCDM saw it)
    h_rt = enc(rt(images))
    pool_d = pairwise_squared_distances(h, enc(rt(pool)))
    x = run.sample(slot, h, n_per=n_per, steps=steps, seed=seed)
    g = torch.Generator().manual_seed(seed)
    r = {"random validation": pool_d.flatten(),
         "same class": pool_d[same_class.bool()],
         "nearest training": knn(h, enc(rt(train)), k=n_per)[0].flatten()}
    for name, cfg in pipelines.items():
        views = torch.stack([SSLAugment(cfg)(images, g) for _ in range(n_per)], 1)
        r[name] = squared_distances_to(h, enc(rt(views.flatten(0, 1))).view(n_images, n_per, -1)).flatten()
    r["own image, round trip"] = squared_distances_to(h, h_rt)
    r["RCDM samples"] = squared_distances_to(h, enc(encoder_view(x.flatten(0, 1), E)).view(n_images, n_per, -1)).flatten()
    dist[slot] = r

fig, axes = plt.subplots(1, len(dist), figsize=(3.4 * len(dist), 3.6), squeeze=False)
for ax, (slot, r) in zip(axes[0], dist.items()):
    ax.boxplot([v.numpy() for v in r.values()], showfliers=False)
    ax.set_xticks(range(1, len(r) + 1), list(r), rotation=70, fontsize=7)
    ax.set_title(slot, fontsize=9)
    ax.set_ylabel("squared distance to h(x)", fontsize=8)
fig.suptitle(f"Fig. 22-23 at {profile} scale", fontsize=10)
plt.tight_layout()
plt.show()
print(f"[{profile} scale] median squared distance to the conditioning representation")
for slot, r in dist.items():
    print(f"  {slot:22s} " + ", ".join(f"{k}: {float(v.median()):.3g}" for k, v in r.items()))

# %%
for slot, r in dist.items():
    run.record("samples_near_condition", f"{slot}/samples_over_random",
           float(r["RCDM samples"].median() / r["random validation"].median()),
           f"{slot}: median distance of samples / of random validation images (paper: < 1)")
verdict = claims.verdict_from_comparisons(
    {slot: (float(r["RCDM samples"].median()), float(r["random validation"].median()))
     for slot, r in run.for_verdict(dist).items()},
    expect="lower", what="the median squared distance of samples to h", against="random validation images",
    paper="samples closer than random images (Fig. 22, 23)")
run.record_verdict("samples_near_condition", verdict)
print(f"[{profile} scale] verdict: {verdict}")

# %% [markdown]
# **What this scale shows.** Under `smoke` the samples ignore their condition and sit as far
# as random images; the notebook proves the code path. Under `tiny`, the paper expects the
# "RCDM samples" box below "random validation" and "same class", near the augmented views;
# the ratio of medians is on the Claims page.
