# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 10. Adversarial examples through the eyes of RCDM
#
# **The paper's claim** (Fig. 5, 30): a linear classifier on a *supervised* representation is
# fooled by small FGSM perturbations, and RCDM conditioned on the perturbed image's
# representation draws the *target* class: the representation itself has moved. The same
# attack on self-supervised representations needs a larger step, and their RCDM decodings
# keep the original object: SSL representations are more robust to FGSM.
#
# Here each encoder slot gets a linear probe for the class (the object's shape) fitted on
# training representations (`rcdm_lib.analysis.adversarial.LinearProbe`), and one targeted
# FGSM step, `x_adv = clip(x - eps * sign(grad_x CE(probe(h(x)), target)), -1, 1)`, is swept
# over eps (units of the [-1, 1] image range). The **flip epsilon** of an image is the
# smallest eps at which the probe predicts the target class; an encoder's flip epsilon is
# the median over the attacked images.

# %% tags=["parameters"]
profile = "smoke"          # run profile (_config.yml): smoke, tiny or imagenet128
settings = None          # the merged settings file (profile + your --config); the pipeline sets it
results_dir = "_results"   # where the numbers for the Claims page go
slots = None               # encoder slots attacked (None: every slot of the profile's model)
probe_train = 512          # training images for the linear probe of each slot, the shape is the class
n_attack = 32              # test images attacked for the flip-epsilon table, none of the target class
target_class = None        # the class FGSM steers toward: a class of the run's data (None: its last)
eps_max = 0.3              # largest FGSM step, [-1, 1] image units
n_eps = 31                 # table epsilons: linspace(0, eps_max, n_eps)
eps_show = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3]   # epsilons decoded with RCDM in the figure
figure_slots = None        # representations decoded with RCDM (None: the backbones)
eps_decode = [0.05, 0.1]   # epsilons at which RCDM decodings are read by the class reader (the verdict)
n_decode = 8               # attacked images decoded at each of them
show_image = 0             # which attacked image the figure shows
n_per = 2                  # RCDM samples per perturbed image
steps = 10                 # sampling steps (ancestral unless a chapter says otherwise)
scale = 4                  # nearest-neighbour upscaling of the figures
seed = 0

# %%
import matplotlib.pyplot as plt

from rcdm_lib import claims
from rcdm_lib.analysis.class_reader import class_reader
from rcdm_lib.analysis.fgsm_study import attack, attack_set, decodings, epsilon_grid, plot_decodings, plot_flip_curves
from rcdm_lib.run import open_run

run = open_run(settings or profile, chapter="10_adversarial", results_dir=results_dir)
slots = list(run.names if slots is None else slots)
atk = attack_set(run, target_class, n_attack)
epsilons = epsilon_grid(eps_max, n_eps, eps_show, eps_decode)
print(f"{run.describe()}\n{len(slots)} representations; {len(atk.labels)} test images attacked toward "
      f"{atk.target_name!r}; {len(epsilons)} epsilons in [0, {eps_max}]")

# %% [markdown]
# ## Linear probes and the FGSM sweep

# %%
sweeps, clean_acc = attack(run, slots, atk, epsilons, probe_train)
summary = {slot: sweeps[slot].summary(atk.labels) for slot in slots}
print(f"[{profile} scale] targeted FGSM toward {atk.target_name!r}; eps in [-1, 1] image units; "
      f"inf: not reached by eps_max = {eps_max}")
print(f"{'representation':24s} {'clean acc':>9s} {'flip eps (median)':>18s} {'flipped at max':>15s} "
      f"{'leaves true class':>18s}")
for slot, s in summary.items():
    print(f"{slot:24s} {clean_acc[slot]:9.2f} {s['median_flip_epsilon']:18.3f} {s['flipped_at_max']:15.2f} "
          f"{s['median_leave_epsilon']:18.3f}")

# %%
plot_flip_curves(run, sweeps, atk, f"targeted FGSM on a linear probe ({profile} scale, {len(atk.labels)} images)")
plt.show()

# %% [markdown]
# ## What RCDM draws from the perturbed representation (Fig. 5, 30)
#
# For each encoder backbone: the perturbed image at each epsilon, titled with the probe's
# prediction (red when it is the target), and below it RCDM samples conditioned on that
# image's representation. The initial noise is shared along a row, so only the
# representation changes from one epsilon to the next.

# %%
figure_slots = [s for s in (figure_slots or run.select(layer="backbone")) if s in slots] or slots
plot_decodings(run, figure_slots, atk, sweeps, eps_show, show_image, n_per, steps, seed, scale)
plt.show()

# %%
reader = class_reader(run, run.image_size)
decoded = decodings(run, reader, figure_slots, atk, sweeps, eps_decode, n_decode, n_per, steps, seed)
print(f"[{profile} scale] RCDM samples of the attacked representation ({n_decode} images x {n_per}), read by "
      f"{reader.what}:\n{'representation':24s} {'eps':>6s} {'moved |dh|/|h|':>15s} {'read as target':>15s}")
for (slot, eps), v in decoded.items():
    print(f"{slot:24s} {eps:6.3f} {v['displacement']:15.3f} {v['target_rate']:15.2f}")

# %%
for slot in slots:   # the probe's flip epsilon, censored at eps_max: a second number, not the verdict's
    run.record("fgsm_robustness", f"{slot}/flip_epsilon", min(summary[slot]["median_flip_epsilon"], eps_max),
               f"{slot}: median eps at which FGSM makes the probe predict {atk.target_name!r} "
               f"({eps_max} = not flipped by eps_max)")
for (slot, eps), v in decoded.items():
    run.record("fgsm_robustness", f"{slot}/eps{eps:g}/displacement", v["displacement"],
               f"{slot}: |h(x_adv) - h(x)| / |h(x)| at eps {eps:g}")
    run.record("fgsm_robustness", f"{slot}/eps{eps:g}/decoded_target_rate", v["target_rate"],
               f"{slot}: RCDM samples at eps {eps:g} read as {atk.target_name!r} (paper: high for supervised only)")
sup, ssl = run.supervised_and_ssl_backbones()
if run.no_comparison("FGSM") or sup not in figure_slots:
    print(run.no_comparison("FGSM") or f"no verdict: {sup} is not among the decoded representations")
else:
    verdict = claims.verdict_from_comparisons(
        {f"{s} eps {e:g}": (decoded[sup, float(e)]["target_rate"], decoded[s, float(e)]["target_rate"])
         for s in ssl if s in figure_slots for e in eps_decode}, expect="higher",
        what=f"the fraction of RCDM samples of the attacked {sup} read as the target", against="SSL backbones'",
        paper="RCDM of an attacked supervised representation draws the target class; SSL ones keep the object "
              "(Fig. 5, 30)")
    run.record_verdict("fgsm_robustness", verdict)
    print(f"[{profile} scale] verdict: {verdict}")

# %% [markdown]
# **What this scale shows.** Under `smoke` the encoders and RCDM are barely trained; the
# numbers mean nothing and the notebook only proves the code path. Under `tiny` the paper's
# evidence is the decoding table: how far each backbone's representation moves under the
# same step, and how often RCDM draws the target shape from it (read by the shape
# classifier). When this chapter was last checked (2026-12-07, 64 images x 2 samples), at eps
# 0.1 the supervised backbone moved 1.07 of its norm and 0.34 of its samples were read as
# "star"; SimCLR, Barlow and VICReg moved 0.59-0.62 and drew it 0.21-0.34 of the time, DINO
# 0.77 and 0.10, Dino+n 0.55 and 0.19. At eps 0.05 the SSL backbones drew the target slightly
# more often than the supervised one (0.23-0.27 against 0.20): the ordering the paper reports
# holds at the larger step, clearly for the DINO family and barely for VICReg. The probe's
# flip epsilon (the first table) measures the probe as much as the representation: probes on
# SSL representations have smaller margins, so it is recorded but not the verdict. This run's
# numbers are in the tables above and on the [Claims](claims.md) page.
