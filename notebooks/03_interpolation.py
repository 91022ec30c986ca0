# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 3. Interpolating between two representations
#
# **The paper's claim** (Fig. 1c, 15, 16): sampling RCDM along the straight line
# $h(\alpha) = (1-\alpha)\,h_0 + \alpha\,h_1$ between the representations of two images
# gives images that change smoothly from the first to the second. With the initial noise
# fixed along a row only the representation changes, so the row isolates what the
# representation controls; with fresh noise per sample, what it leaves free changes too.

# %% tags=["parameters"]
profile = "smoke"        # run profile (_config.yml): smoke, tiny or imagenet128
settings = None          # the merged settings file (profile + your --config); the pipeline sets it
results_dir = "_results"  # where the numbers for the Claims page go
slot = None              # representation to interpolate (None: the first of the model)
pair = [0, 1]            # test-set indices of the two end images
n_alpha = 4              # points along the line, end points included
alpha_range = [0.0, 1.0]  # the alphas sampled (the official script at 128px: [0.5, 0.7])
n_noise_rows = 2         # rows of each kind
steps = 10               # sampling steps (ancestral unless a chapter says otherwise)
scale = 8                # nearest-neighbour upscaling of the figures
seed = 0

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from rcdm_lib import claims
from rcdm_lib.analysis.interpolation import interpolate, monotone_fraction, progress_along_path
from rcdm_lib.run import open_run
from rcdm_lib.viz import image_grid
from rcdm_lib.widgets import image_slider

run = open_run(settings or profile, chapter="03_interpolation", results_dir=results_dir)
slot = slot or run.names[0]
ends = run.data.split("test").batch(pair).images
h = run.encode(slot, ends)
res = interpolate(run, slot, h[0], h[1], n_alpha=n_alpha, n_rows=n_noise_rows, steps=steps, seed=seed,
                  alpha_range=alpha_range)
print(f"{run.describe()}\ninterpolating {slot} between test images {pair}, alphas {res.alphas.tolist()}")

# %%
view = run.rcdm_view(ends)
fig, axes = plt.subplots(2, 1, figsize=(1.1 * (n_alpha + 2), 1.1 * 2 * n_noise_rows + 1.2))
for ax, (title, rows) in zip(axes, [("fixed noise per row", res.fixed_noise), ("fresh noise per sample", res.varying_noise)]):
    framed = torch.cat([view[0].expand(n_noise_rows, 1, *view.shape[1:]), rows,
                        view[1].expand(n_noise_rows, 1, *view.shape[1:])], dim=1)
    ax.imshow(image_grid(framed.flatten(0, 1), nrow=n_alpha + 2, scale=scale), interpolation="nearest")
    ax.set_title(f"{title}: image 0 | alpha = {alpha_range[0]:g} ... {alpha_range[1]:g} | image 1", fontsize=9)
    ax.axis("off")
fig.suptitle(f"{slot} (profile: {profile})", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# Move the slider to walk along the line: each position shows the samples at that
# $\alpha$ (top row fixed noise, bottom row fresh noise). The frames are precomputed, so
# the slider works in the static book without a running kernel.

# %%
frames = [image_grid(torch.stack([res.fixed_noise[0, a], res.varying_noise[0, a]]), nrow=2, scale=scale * 2)
          for a in range(n_alpha)]
display(image_slider(frames, [f"alpha = {a:.2f}" for a in res.alphas.tolist()], description="alpha"))

# %%
prog = torch.stack([progress_along_path(run, slot, res.fixed_noise[r], h[0], h[1], run.encoder_size)
                    for r in range(n_noise_rows)])
mono = sum(monotone_fraction(p) for p in prog) / n_noise_rows
run.record("interpolation", f"{slot}/monotone", mono,
           f"{slot}: fraction of steps along a fixed-noise row whose re-encoded sample moves towards image 1")
print(f"[{profile}] re-encoded progress towards image 1 along each fixed-noise row "
      f"(cos to h1 - cos to h0):\n{prog.numpy().round(2)}\nmonotone fraction {mono:.2f}")
# a row whose samples ignored the representation would step towards image 1 half of the time
verdict = claims.verdict_from_comparison(
    mono, 0.5, expect="higher", what="the fraction of steps moving towards image 1",
    against="a path that ignores the representation", paper="samples move smoothly from one image to the other")
run.record_verdict("interpolation", verdict)
print(f"verdict: {verdict}")

# %% [markdown]
# **What this scale shows.** Under `smoke` the models are untrained: the frames are noise
# and the number is meaningless. Under `tiny`, a fixed-noise row should morph the shape
# and colours of image 0 into those of image 1 while the layout set by the noise stays,
# and the re-encoded progress should rise along the row (the fraction is on the
# [Claims](claims.md) page). Under `imagenet128` these are the paper's Fig. 15 and 16, over the
# official script's alphas 0.5 to 0.7: at 128px the samples stay with one image or the other
# outside that band.
