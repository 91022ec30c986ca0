# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 2. Out-of-distribution conditioning
#
# **The paper's claim** (Fig. 1b, 13, 34): conditioned on the representation of an image
# unlike anything in its training set, RCDM still produces images that keep the image's
# salient structure, rendered in the style of the training distribution. The samples show
# how an encoder *describes* an unfamiliar image in terms of what it has learnt.
#
# Here the conditioning images are the photographs that ship with scikit-image (astronaut,
# cat, coffee, rocket, ...), resized to the encoders' input size; the models never saw a
# photograph.

# %% tags=["parameters"]
profile = "smoke"        # run profile (_config.yml): smoke, tiny or imagenet128
results_dir = "_results"  # where the numbers for the Claims page go
n_per = 3                # samples per photograph
steps = 10               # sampling steps (ancestral unless a chapter says otherwise)
scale = 8                # nearest-neighbour upscaling of the figures
seed = 0

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from rcdm_lib import claims
from rcdm_lib.analysis.interpolation import reencode
from rcdm_lib.data import ood_photos
from rcdm_lib.models import load_profile_models
from rcdm_lib.viz import image_grid

models = load_profile_models(profile)
size = models.profile["data"]["size"]
photos, names = ood_photos(size)
print(f"profile {profile!r}: {len(names)} photographs {names} at {size}px; RCDM at {models.image_size}px")

# %%
grids, top1 = {}, {}
for slot in models.slots:
    h = models.encode(slot, photos)
    x = models.sample(slot, h, n_per=n_per, steps=steps, seed=seed)          # [N, n_per, 3, S, S]
    rows = torch.cat([models.rcdm_view(photos).unsqueeze(1), x], dim=1)
    grids[slot] = image_grid(rows.flatten(0, 1), nrow=n_per + 1, scale=scale)
    sims = F.cosine_similarity(reencode(models, slot, x.flatten(0, 1), size).unsqueeze(1), h.unsqueeze(0), dim=-1)
    top1[slot] = (sims.argmax(1) == torch.arange(len(names)).repeat_interleave(n_per)).float().mean().item()

fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.2 * len(names) / (n_per + 1) + 0.6))
for ax, (slot, g) in zip(axes.flat if hasattr(axes, "flat") else [axes], grids.items()):
    ax.imshow(g, interpolation="nearest")
    ax.set_title(slot, fontsize=9)
    ax.axis("off")
fig.suptitle(f"photograph | {n_per} samples  (profile: {profile})", fontsize=10)
plt.tight_layout()
plt.show()

# %%
for slot, v in top1.items():
    claims.record(results_dir, "02_out_of_distribution", "ood_conditioning", f"{slot}/top1", v,
                  f"{slot}: re-encoded samples nearest to their own photograph among {len(names)}",
                  profile=profile)
print(f"[{profile}] fraction of samples whose re-encoded representation is nearest to their own photograph "
      f"(chance {1 / len(names):.2f}):")
for slot, v in top1.items():
    print(f"  {slot:24s} {v:.2f}")

# %% [markdown]
# **What this scale shows.** Under `smoke` the samples are noise (a code-path check).
# Under `tiny`, the training set holds only coloured shapes on plain or textured
# backgrounds, so the samples can only be shapes: what they keep of a photograph (its
# dominant colours, a bright object on a dark background, its layout) is what the
# representation retains of it, and the retrieval number on the [Claims](claims.md) page
# says whether the samples still identify their photograph. The paper's ImageNet-scale
# result (realistic images that keep the photo's object and pose) needs `imagenet128`.
