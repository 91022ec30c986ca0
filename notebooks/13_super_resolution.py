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
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from rcdm_lib.run import open_run
from rcdm_lib.superres import super_resolve, upsample_low_res
from rcdm_lib.superres.evaluation import shape_numbers, superres_numbers, superres_verdicts, test_pairs
from rcdm_lib.viz import image_grid

run = open_run(settings or profile, chapter="13_super_resolution", results_dir=results_dir)
sr = run.superres
print(run.describe(), run.missing("superres") or "", sep="\n")
if sr is not None:
    S, L = sr.small_size, sr.large_size
    diffusion = sr.diffusion(sr_steps, sr_sampler)
    pairs = test_pairs(run, sr, max(n_real, n_images))
    cond_images = run.data.split("test").batch(range(n_images)).images
    slots = [s for s in slots if s in run.names] or run.names[:3]
    print(f"{S} -> {L}px upsampler ({'ADM release ' if sr.official else ''}{sr.path.name}), "
          f"{sr_steps} {sr_sampler} steps; RCDM samples of {slots}")


# %% [markdown]
# ## RCDM samples and their super-resolved versions (Fig. 14)
#
# Per representation: RCDM samples at the RCDM resolution (pixels enlarged), bilinear
# upsampling, and the upsampler's output.

# %%
if sr is not None:
    samples = {slot: run.sample(slot, run.encode(slot, cond_images), n_per=1, steps=rcdm_steps, seed=seed)[:, 0]
               for slot in slots}                                                           # [n_images, 3, S, S]
    sr_samples = {slot: super_resolve(sr.model, diffusion, x, rep=pairs.rep_rows(n_images), sampler=sr_sampler,
                                      seed=seed) for slot, x in samples.items()}           # [n_images, 3, L, L]
    k = min(n_show, n_images)
    fig, axes = plt.subplots(len(slots), 1, figsize=(1.3 * k + 1, 4.2 * len(slots)), squeeze=False)
    for ax, slot in zip(axes[:, 0], slots):
        x = samples[slot][:k]
        rows = torch.cat([F.interpolate(x, size=(L, L), mode="nearest"), upsample_low_res(x, (L, L)).clamp(-1, 1),
                          sr_samples[slot][:k]])
        ax.imshow(image_grid(rows, nrow=k, scale=scale))
        ax.set_title(f"{slot}\nrows: sample {S}px | bilinear | super-resolved {L}px", fontsize=8)
        ax.axis("off")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## Real images: low resolution, bilinear, super-resolved, the truth

# %%
if sr is not None:
    low, truth = pairs.low[:n_real], pairs.high[:n_real]
    sr_real = super_resolve(sr.model, diffusion, low, rep=pairs.rep_rows(n_real), sampler=sr_sampler, seed=seed)
    bilinear = upsample_low_res(low, (L, L)).clamp(-1, 1)
    k = min(n_show, n_real)
    fig, ax = plt.subplots(figsize=(1.3 * k + 1, 5.2))
    rows = torch.cat([F.interpolate(low[:k], size=(L, L), mode="nearest"), bilinear[:k], sr_real[:k], truth[:k]])
    ax.imshow(image_grid(rows, nrow=k, scale=scale))
    ax.set_title(f"rows: low-res {S}px | bilinear | super-resolved | true {L}px", fontsize=8)
    ax.axis("off")
    plt.show()

# %% [markdown]
# ## What the upsampler adds and keeps

# %%
if sr is not None:
    numbers = superres_numbers(sr_real, truth, low, samples, sr_samples, S)
    shapes, why_not = shape_numbers(run, sr, pairs.labels, {"sr": sr_real, "bilinear": bilinear, "true": truth},
                                    samples, sr_samples)
    numbers.update(shapes)
    print(f"[{profile} scale] {n_real} real test images, {n_images} RCDM samples per representation, "
          f"{sr_steps} {sr_sampler} upsampler steps" + (f"\n{why_not}" if why_not else ""))
    for key, (value, description) in numbers.items():
        print(f"  {key:44s} {value:8.3f}   {description}")
        run.record("super_resolution", key, value, description)
    for part, verdict in zip(("detail", "content"), superres_verdicts(numbers, slots, n_real, n_images)):
        run.record_verdict("super_resolution", verdict, part=part)
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
