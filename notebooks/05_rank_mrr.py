# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 5. Rank and mean reciprocal rank of the conditioning image
#
# **The paper's claim** (Table 2b, Fig. 18): re-encode each RCDM sample with the encoder that
# conditioned it and rank the conditioning image among a pool of validation images by distance
# in representation space. Samples from a self-supervised *backbone* representation find their
# own image more often (better rank-1 and mean reciprocal rank, MRR) than samples from the
# supervised representation, which keeps mostly the class.
#
# Samples live at the RCDM resolution S, so the pool images are first brought to S
# (`models.rcdm_view`) and samples and pool take the same S -> E resize before encoding
# (`rcdm_lib.metrics.rank.encoder_view`). Distances are squared Euclidean. The "real image"
# row ranks the conditioning image's own round-tripped view: the ceiling at this resolution.

# %% tags=["parameters"]
profile = "smoke"          # run profile (_config.yml): smoke, tiny or imagenet128
settings = None          # the merged settings file (profile + your --config); the pipeline sets it
results_dir = "_results"   # where the numbers for the Claims page go
pool_size = 64             # validation images the conditioning image is ranked among
n_cond = 16                # conditioning images (the first n_cond of the pool)
n_per = 2                  # samples per conditioning image
steps = 10                 # sampling steps (ancestral unless a chapter says otherwise)
seed = 0

# %%
import matplotlib.pyplot as plt
import torch

from rcdm_lib import claims
from rcdm_lib.analysis.beside import compare_beside
from rcdm_lib.metrics import encoder_view, rank_summary, sample_ranks, target_ranks
from rcdm_lib.run import open_run

run = open_run(settings or profile, chapter="05_rank_mrr", results_dir=results_dir)
E = run.encoder_size
pool = run.data.split("val").batch(range(pool_size)).images
pool_S = run.rcdm_view(pool)
targets = torch.arange(n_cond)
print(f"{run.describe()}\npool of {pool_size} validation images, {n_cond} x {n_per} samples per representation")

# %%
ranks, rows = {}, []
for slot in run.names:
    encode = lambda x, slot=slot: run.encode(slot, x)             # noqa: E731
    h = encode(pool[:n_cond])
    samples = run.sample(slot, h, n_per=n_per, steps=steps, seed=seed)
    ranks[slot] = sample_ranks(encode, samples, pool_S, targets, encoder_size=E)
    real = target_ranks(encode(encoder_view(pool_S[:n_cond], E)), encode(encoder_view(pool_S, E)), targets)
    s, c = rank_summary(ranks[slot], pool_size), rank_summary(real, pool_size)
    rows.append((slot, s, c))

print(f"[{profile} scale] rank of the conditioning image among {pool_size} (chance MRR {rows[0][1]['chance_mrr']:.3f})")
print(f"{'representation':24s} {'MRR':>6s} {'top-1':>6s} {'top-5':>6s} {'mean rank':>10s} | real image: {'MRR':>6s} {'top-1':>6s}")
for slot, s, c in rows:
    print(f"{slot:24s} {s['mrr']:6.3f} {s['top1']:6.3f} {s['top5']:6.3f} {s['mean_rank']:10.1f} | "
          f"{'':12s}{c['mrr']:6.3f} {c['top1']:6.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
bins = torch.logspace(0, torch.log10(torch.tensor(float(pool_size))), 12).tolist()
for slot, r in ranks.items():
    ax.hist(r.flatten().numpy(), bins=bins, histtype="step", lw=1.5, label=slot)
ax.set_xscale("log")
ax.set_xlabel(f"rank of the conditioning image among {pool_size}")
ax.set_ylabel("samples")
ax.set_title(f"Fig. 18 at {profile} scale", fontsize=10)
ax.legend(fontsize=7)
plt.tight_layout()
plt.show()

# %%
for slot, s, _ in rows:
    run.record("rank_mrr", f"{slot}/mrr", s["mrr"], f"{slot}: MRR of the conditioning image among {pool_size}")
    run.record("rank_mrr", f"{slot}/top1", s["top1"], f"{slot}: rank-1 rate among {pool_size}")
by = {slot: s for slot, s, _ in rows}
sup, ssl = run.supervised_and_ssl_backbones()
for slot in ssl if sup else []:
    run.record("rank_mrr", f"{slot}_minus_supervised/mrr", by[slot]["mrr"] - by[sup]["mrr"],
               f"MRR of {slot} minus supervised (paper: > 0)")
if run.no_comparison("the MRR"):
    print(run.no_comparison("the MRR"))
else:
    verdict = claims.verdict_from_comparisons(
        {slot: (by[slot]["mrr"], by[sup]["mrr"]) for slot in ssl}, expect="higher",
        what="the MRR of SSL backbone samples", against="the supervised one",
        paper="higher for SSL backbones (Table 2b, Fig. 18)")
    run.record_verdict("rank_mrr", verdict)
    print(f"[{profile} scale] verdict: {verdict}")
print(*compare_beside(run, {slot: 1 / r.float() for slot, r in ranks.items()}, "MRR"), sep="\n")

# %% [markdown]
# **What this scale shows.** Under `smoke` the models are barely trained and the ranks are
# near chance; the notebook only proves the code path. Under `tiny` the table above is the
# tiny-scale Table 2b: compare each SSL backbone's MRR with the supervised row (the paper
# finds SSL backbones higher) and with the "real image" ceiling; the Claims page records the
# differences. Under `imagenet128` the pool is the paper's validation set.
#
# **The ViT.** `dino_vit` (a small ViT trained with the DINO objective) and `dino_resnet`
# (the ResNet DINO encoder) each have their own RCDM from the same recipe; the last lines
# compare their MRR image by image, and `dino_resnet` with the slot model's `dino_backbone`
# (same encoder, another RCDM). A higher MRR means the representation keeps more of what
# singles out its image.
