# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 14. The methods at a glance: representation matching, diffusion and RCDM in 2-D
#
# **The paper's picture** (Fig. 11): to see what a representation h* holds, one can look for
# an input x with h(x) = h*. *Representation matching* (gradient descent on x, as the
# inversion methods do) finds such an input but nothing keeps it near the data. An
# *unconditional diffusion model* lands on the data, with any representation. *RCDM*, the
# diffusion model conditioned on h*, lands where both hold: on the data, with the
# representation h*.
#
# Here the three are run, not drawn, on a problem small enough to solve exactly
# (`rcdm_lib.analysis.toy2d`): the data is a mixture of Gaussians on a circle, the "encoder"
# keeps only the direction of a point, h(x) = x / |x| (it throws the radius away), so the
# inputs with representation h* form a ray. The diffusion models are our
# `GaussianDiffusion` with the exact denoiser of the mixture (closed form, no training);
# RCDM's is the same formula for the mixture restricted to the ray.

# %% tags=["parameters"]
profile = "smoke"          # run profile (_config.yml): smoke, tiny or imagenet128 (the toy is the same)
settings = None          # the merged settings file (profile + your --config); the pipeline sets it
results_dir = "_results"   # unused: this chapter records nothing for the Claims page
n_clusters = 8             # Gaussian clusters on the circle
radius = 2.0               # radius of the circle
cluster_std = 0.15         # standard deviation of each cluster
schedule = "linear"        # noise schedule of the 1000-step process
diffusion_steps = 200      # respaced steps of the reverse process
sampler = "ddim"           # "ddim": deterministic paths, easy to follow; "ancestral": DDPM, noisy paths
match_steps = 1000         # gradient-descent steps of representation matching
match_lr = 0.05            # its step size
target_cluster = 1         # the conditioning point is a data point of this cluster
n_traj = 8                 # trajectories drawn per method
n_stats = 2000             # starts for the table and the end-point clouds
tol_deg = 5.0              # an end point "has the representation" within this angle, in degrees
seed = 0

# %%
import math

import matplotlib.pyplot as plt
import torch

from rcdm_lib.analysis.toy2d import (ExactDenoiser, Mixture2D, angle_error, diffusion_trajectories, direction,
                                     match_representation)
from rcdm_lib.diffusion import GaussianDiffusion

torch.manual_seed(seed)
g = torch.Generator().manual_seed(seed)
data = Mixture2D.ring(n_clusters, radius=radius, std=cluster_std)
full = GaussianDiffusion.from_official(1000, schedule, learn_sigma=False)
process = GaussianDiffusion.from_official(1000, schedule, learn_sigma=False, timestep_respacing=str(diffusion_steps))
model = ExactDenoiser(data, full.alphas_cumprod)     # model(x_t, t, rep=None): the optimal epsilon

if not 0 <= target_cluster < n_clusters:
    raise ValueError(f"target_cluster must be in [0, {n_clusters}), got {target_cluster}")
x_cond = data.means[[target_cluster]] + cluster_std * torch.randn(1, 2, generator=g, dtype=torch.float64)
h_star = direction(x_cond)                            # the representation we want to see, [1, 2]
x_T = torch.randn(n_stats, 2, generator=g, dtype=torch.float64)   # shared starting points
print(f"{n_clusters} clusters on a circle of radius {radius} (std {cluster_std}); h* = direction of a point of "
      f"cluster {target_cluster}, angle {math.degrees(math.atan2(h_star[0, 1], h_star[0, 0])):.1f} degrees")

# %%
paths = {
    "representation matching": match_representation(direction, h_star, x_T, steps=match_steps, lr=match_lr),
    "unconditional diffusion": diffusion_trajectories(process, model, x_T, generator=g, sampler=sampler),
    "RCDM (diffusion conditioned on h*)": diffusion_trajectories(process, model, x_T, generator=g, sampler=sampler,
                                                                  model_kwargs={"rep": h_star.expand(n_stats, 2)}),
}

# %%
real, _ = data.sample(3000, generator=g)
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), sharex=True, sharey=True)
colors = plt.cm.tab20(torch.linspace(0, 1, n_traj).numpy())
lim = radius + 1.3
for ax, (name, traj) in zip(axes, paths.items()):
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.8", label="data")
    ax.plot([0, lim * 1.5 * float(h_star[0, 0])], [0, lim * 1.5 * float(h_star[0, 1])], "k--", lw=1,
            label="inputs with representation h*")
    end = traj[-1]
    ax.scatter(end[:, 0], end[:, 1], s=1, c="tab:blue", alpha=0.25, label=f"end points ({n_stats})")
    for i in range(n_traj):
        ax.plot(traj[:, i, 0], traj[:, i, 1], "-", color=colors[i], lw=0.8, alpha=0.9)
        ax.plot(traj[0, i, 0], traj[0, i, 1], "o", color=colors[i], ms=3)
        ax.plot(traj[-1, i, 0], traj[-1, i, 1], "*", color=colors[i], ms=9, mec="k", mew=0.4)
    ax.plot(x_cond[0, 0], x_cond[0, 1], "kX", ms=9, label="conditioning point")
    ax.set_title(name, fontsize=10)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
axes[0].legend(fontsize=7, loc="lower left")
fig.suptitle(f"{n_traj} trajectories from the same starting points (o) to their end points (*)", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Where each method ends
#
# "Has the representation": the end point's direction is within `tol_deg` of h*. "On the
# data": its Mahalanobis distance to the nearest cluster is below 3.

# %%
tol = math.radians(tol_deg)
print(f"{'method':36s} {'has the representation':>22s} {'on the data':>12s} {'in the cluster of h*':>21s}")
for name, traj in paths.items():
    end = traj[-1]
    comp, dist = data.nearest_component(end)
    has_rep = float((angle_error(end, h_star) < tol).double().mean())
    on_data = float((dist < 3).double().mean())
    in_cluster = float(((comp == target_cluster) & (dist < 3)).double().mean())
    print(f"{name:36s} {has_rep:22.2f} {on_data:12.2f} {in_cluster:21.2f}")

# %% [markdown]
# **What this shows.** The numbers are exact computations on a toy; the profile only sets
# their sizes. Representation matching reaches the ray from every start, but it turns about the
# origin and keeps the radius it started from (the loss does not see the radius), so most of
# its end points are off the data, some next to the origin. Unconditional diffusion puts every
# point on the data, in each cluster in proportion to its weight, so only the few that land in
# h*'s cluster near the ray have the representation. RCDM does both: its points lie on the ray
# *and* on the data, in the cluster that h* points to, spread along what the encoder discards.
# This is the sense in which the paper uses RCDM to "see" a representation: its samples are
# inputs the data could contain that the encoder cannot tell from the conditioning point.
