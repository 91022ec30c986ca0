# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 13. Super-resolution of RCDM samples
#
# **The paper's use** (Fig. 14): RCDM samples are produced at the model's resolution (128px
# in the paper); a separate super-resolution diffusion model, ADM's upsampler, turns them into
# higher-resolution images. The upsampler is a diffusion model of the high-resolution image
# whose network also sees the low-resolution one, upsampled bilinearly and concatenated to its
# noisy input on the channel axis (`rcdm_lib.superres.SuperResUNet`, as guided-diffusion's
# `SuperResModel`). It should add the detail that the low resolution cannot hold while keeping
# the sample's content.
#
# Here the upsampler is trained on the built-in shapes at twice the RCDM resolution
# (`scripts/train_superres.py`; low-res inputs made the way the RCDM's training images are made);
# under `imagenet128` it is ADM's released 128 -> 512 (or 64 -> 256) upsampler, conditioned on
# the ImageNet class of the image. Numbers: for real test images, PSNR against the true
# high-resolution image (next to bilinear upsampling), consistency (the output brought back to the
# low resolution against the input, in dB), and the high-frequency detail restored (spectral
# energy above the low resolution's Nyquist frequency, relative to real images; bilinear
# upsampling has little). For RCDM samples: the same consistency and detail, and whether a shape
# classifier reads the same shape before and after super-resolution.

# %% tags=["parameters"]
profile = "smoke"          # run profile (_config.yml): smoke, tiny or imagenet128
settings = None          # the merged settings file (profile + your --config); the pipeline sets it
results_dir = "_results"   # where the numbers for the Claims page go
slots = ["supervised_backbone", "simclr_backbone", "dino_backbone"]   # RCDM samples of these representations
n_images = 2               # conditioning images (test split) per representation
n_real = 8                 # real test images super-resolved for the numbers
n_show = 4                 # images shown per figure row
rcdm_steps = 10            # RCDM sampling steps (ancestral)
sr_steps = 10              # upsampler sampling steps (respaced)
sr_sampler = "ancestral"   # ancestral, or ddim (deterministic: eta 0)
scale = 4                  # nearest-neighbour upscaling of the figures
seed = 0

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from rcdm_lib import claims
from rcdm_lib.config import REPO_ROOT, as_settings
from rcdm_lib.data import FactorShapes
from rcdm_lib.metrics import encoder_view
from rcdm_lib.models import load_profile_models
from rcdm_lib.superres import (consistency_psnr, folder_pairs, input_retrieval, load_profile_superres,
                               one_hot_classes, psnr, restored_detail, shapes_pairs, super_resolve, upsample_low_res)
from rcdm_lib.viz import image_grid

NOTEBOOK = "13_super_resolution"
cfg = as_settings(settings or profile)
sr = load_profile_superres(cfg)
S, L = sr.small_size, sr.large_size
diffusion = sr.diffusion(sr_steps, sr_sampler)
d = cfg["data"]
n_load = max(n_real, n_images)
if sr.official:   # ImageNet images; the released upsamplers are conditioned on the class
    high, low, labels = folder_pairs(f"{d['root']}/val", L, S, n_load)               # [N, 3, L, L], [N, 3, S, S]
    cond_images = encoder_view(high[:n_images], d["encoder_size"])
    upsampler_rep = one_hot_classes(labels)
else:             # the built-in shapes, resized to L (nothing to do at smoke and tiny: rendered at L)
    hi8, lo8, factors = shapes_pairs("test", d["size"], d["seed"], L, S, d["lengths"]["test"], range(n_load))
    high, low, labels = hi8.float() / 127.5 - 1, lo8.float() / 127.5 - 1, factors["shape"].long()
    cond_images = FactorShapes("test", size=d["size"], length=d["lengths"]["test"], seed=d["seed"]).batch(
        list(range(n_images)))[0]
    upsampler_rep = None
models = load_profile_models(cfg)
slots = [s for s in slots if s in models.slots] or list(models.slots)[:3]
print(f"profile {profile!r}: {S} -> {L}px upsampler ({'ADM release ' if sr.official else ''}{sr.path.name}), "
      f"{sr_steps} {sr_sampler} steps; RCDM samples of {slots}")


def rep_rows(rep, idx):
    return None if rep is None else rep[idx]


def enlarge(x, size=L):
    """Low-res images shown at the high resolution, pixels kept (nearest)."""
    return F.interpolate(x, size=(size, size), mode="nearest")


# %% [markdown]
# ## RCDM samples and their super-resolved versions (Fig. 14)
#
# Per representation: RCDM samples at the RCDM resolution (pixels enlarged), bilinear
# upsampling, and the upsampler's output.

# %%
samples, sr_samples = {}, {}
for slot in slots:
    x = models.sample(slot, models.encode(slot, cond_images), n_per=1, steps=rcdm_steps, seed=seed)[:, 0]
    samples[slot] = x                                                                  # [n_images, 3, S, S]
    sr_samples[slot] = super_resolve(sr.model, diffusion, x, rep=rep_rows(upsampler_rep, slice(0, n_images)),
                                     sampler=sr_sampler, seed=seed)                     # [n_images, 3, L, L]
k = min(n_show, n_images)
fig, axes = plt.subplots(len(slots), 1, figsize=(1.3 * k + 1, 4.2 * len(slots)), squeeze=False)
for ax, slot in zip(axes[:, 0], slots):
    x = samples[slot][:k]
    rows = torch.cat([enlarge(x), upsample_low_res(x, (L, L)).clamp(-1, 1), sr_samples[slot][:k]])
    ax.imshow(image_grid(rows, nrow=k, scale=scale))
    ax.set_title(f"{slot}\nrows: sample {S}px | bilinear | super-resolved {L}px", fontsize=8)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Real images: low resolution, bilinear, super-resolved, the truth

# %%
sr_real = super_resolve(sr.model, diffusion, low[:n_real], rep=rep_rows(upsampler_rep, slice(0, n_real)),
                        sampler=sr_sampler, seed=seed)
bilinear = upsample_low_res(low[:n_real], (L, L)).clamp(-1, 1)
truth = high[:n_real]
k = min(n_show, n_real)
fig, ax = plt.subplots(figsize=(1.3 * k + 1, 5.2))
ax.imshow(image_grid(torch.cat([enlarge(low[:k]), bilinear[:k], sr_real[:k], truth[:k]]), nrow=k, scale=scale))
ax.set_title(f"rows: low-res {S}px | bilinear | super-resolved | true {L}px", fontsize=8)
ax.axis("off")
plt.show()

# %% [markdown]
# ## What the upsampler adds and keeps

# %%
numbers = {
    "real/sr_psnr_db": (float(psnr(sr_real, truth).mean()), "PSNR of the super-resolved image vs the true one (dB)"),
    "real/bilinear_psnr_db": (float(psnr(bilinear, truth).mean()), "PSNR of bilinear upsampling vs the true image (dB)"),
    "real/sr_consistency_psnr_db": (float(consistency_psnr(sr_real, low[:n_real]).mean()),
                                    "downsampled super-resolved image vs its low-res input (dB)"),
    "real/sr_detail": (restored_detail(sr_real, truth, S),
                       "high-frequency energy of super-resolved real images / of the true ones"),
    "real/bilinear_detail": (restored_detail(bilinear, truth, S),
                             "high-frequency energy of bilinear upsampling / of the true images"),
    "real/sr_input_retrieval": (input_retrieval(sr_real, low[:n_real]),
                                f"downsampled super-resolved image nearest to its own input among {n_real}"),
}
for slot in slots:
    x, y = samples[slot], sr_samples[slot]
    numbers[f"{slot}/sr_consistency_psnr_db"] = (float(consistency_psnr(y, x).mean()),
                                                 f"{slot} RCDM samples: downsampled super-resolution vs the sample (dB)")
    numbers[f"{slot}/sr_detail"] = (restored_detail(y, truth, S),
                                    f"{slot} RCDM samples: high-frequency energy after super-resolution / real images'")
    numbers[f"{slot}/bilinear_detail"] = (restored_detail(upsample_low_res(x, (L, L)).clamp(-1, 1), truth, S),
                                          f"{slot} RCDM samples: high-frequency energy after bilinear / real images'")
    numbers[f"{slot}/sr_input_retrieval"] = (input_retrieval(y, x), f"{slot} RCDM samples: downsampled "
                                             f"super-resolution nearest to its own sample among {n_images}")

# %%
# Content: a shape classifier at each resolution (built-in data only). At S the classifier that
# scores RCDM training (rcdm_lib.training.quality); at L = the dataset size the supervised tiny
# encoder, whose head is a shape classifier.
supervised = (REPO_ROOT / cfg["encoders"]["dir"] / "supervised.safetensors") if not sr.official else None
if supervised is not None and supervised.is_file():
    from rcdm_lib.encoders import load_tiny_encoder
    from rcdm_lib.training.quality import classify, train_shape_classifier

    clf_S = train_shape_classifier(cfg, S, REPO_ROOT / cfg.get("cache_dir", ".cache") / profile, log=lambda *a: None)
    clf_L = load_tiny_encoder(supervised).eval()

    def shape_L(x):
        return classify(clf_L, encoder_view(x, d["size"])).argmax(1)

    y = labels[:n_real]
    for name, imgs in (("sr", sr_real), ("bilinear", bilinear), ("true", truth)):
        numbers[f"real/{name}_shape_accuracy"] = (float((shape_L(imgs) == y).float().mean()),
                                                  f"{L}px shape classifier on {name} real images: accuracy")
    for slot in slots:
        before = classify(clf_S, samples[slot]).argmax(1)
        numbers[f"{slot}/shape_kept"] = (float((shape_L(sr_samples[slot]) == before).float().mean()),
                                         f"{slot} RCDM samples: same shape read before ({S}px) and after "
                                         f"super-resolution ({L}px)")

print(f"[{profile} scale] {n_real} real test images, {n_images} RCDM samples per representation, "
      f"{sr_steps} {sr_sampler} upsampler steps")
for key, (value, description) in numbers.items():
    print(f"  {key:44s} {value:8.3f}   {description}")

# %%
for key, (value, description) in numbers.items():
    claims.record(results_dir, NOTEBOOK, "super_resolution", key, value, description, profile=profile)
# Detail: |log(energy ratio to real images)|, 0 for real-like detail; blur (bilinear) and noise both score badly.
groups = {"real test images": "real", **{f"{slot} samples": slot for slot in slots}}
detail = claims.verdict_from_comparisons(
    {name: (abs(math.log(numbers[f"{g}/sr_detail"][0])), abs(math.log(numbers[f"{g}/bilinear_detail"][0])))
     for name, g in groups.items()},
    expect="lower", what="|log| of the high-frequency energy relative to real images", against="bilinear upsampling",
    paper="the upsampler adds the detail that the low resolution lacks", need="all")
chance = {"real": 1 / n_real, **{slot: 1 / n_images for slot in slots}}
content = claims.verdict_from_comparisons(
    {name: (numbers[f"{g}/sr_input_retrieval"][0], chance[g]) for name, g in groups.items()},
    expect="higher", what="the fraction of outputs whose downsample is nearest to their own input",
    against="chance", paper="super-resolution keeps the sample's content", need="all")
for part, verdict in (("detail", detail), ("content", content)):
    claims.record_verdict(results_dir, NOTEBOOK, "super_resolution", verdict, profile=profile, part=part)
    print(f"verdict ({part}): {verdict}")

# %% [markdown]
# **What this scale shows.** Under `smoke` both models are trained for a few steps: the
# outputs are noise and the numbers mean nothing; the notebook proves the code path. Under
# `tiny` the upsampler (a few minutes of CPU training) doubles 16px RCDM samples to 32px: look
# for sharper shape edges than bilinear upsampling gives, with the colours and shape of the
# sample kept. A diffusion upsampler draws plausible detail rather than the average, so its
# PSNR against the true image need not beat bilinear upsampling; its consistency with the
# input and the detail it restores are the numbers to read, on the [Claims](claims.md) page.
# Under `imagenet128` this is the paper's Fig. 14 with ADM's released upsampler.
