#!/usr/bin/env python
"""The quality bar of a profile's trained RCDM, with sample grids.

    python scripts/evaluate.py --profile tiny [--n-images 100] [--guidance 2.0]

Trains (or reuses) a shape classifier on real images at the RCDM resolution, samples RCDM
for validation images with every representation slot, and reports the fraction of samples
that keep the conditioning image's shape, and how recognisable the unconditional samples
are. Writes quality.json and sample grids next to the exported model.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rcdm_lib.config import add_settings_args, repo_path, settings_from_args  # noqa: E402
from rcdm_lib.run import open_run  # noqa: E402
from rcdm_lib.training.quality import shape_agreement, train_shape_classifier  # noqa: E402
from rcdm_lib.viz import save_image_grid  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(p)
    p.add_argument("--n-images", type=int, default=100, help="validation images per slot")
    p.add_argument("--n-per", type=int, default=2, help="samples per image")
    p.add_argument("--steps", type=int, default=50, help="ancestral sampling steps (the process respaced evenly)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    p.add_argument("--n-reference", type=int, default=5000,
                   help="train images for each slot's neighbour-agreement reference (0: none)")
    p.add_argument("--out", help="folder for quality.json and grids (default: next to the exported model)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--slots", nargs="+", help="evaluate only these representations of the run (e.g. dino_backbone, "
                                              "or dino_vit of rcdm.beside); the results go to "
                                              "quality_slots_n<N>[_guidance<g>].json")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples' noise")
    p.add_argument("--split", choices=("val", "train"), default="val",
                   help="condition on val images (default) or on the first N training images, to compare the two "
                        "(results go to quality[...]_train.json)")
    p.add_argument("--weights", help="an RCDM safetensors file to evaluate instead of the profile's rcdm.export "
                                     "(e.g. an earlier export kept for comparison)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = settings_from_args(args)
    if args.weights:
        if not Path(args.weights).is_file():
            raise SystemExit(f"--weights {args.weights}: no such file; expected an RCDM safetensors file")
        profile["rcdm"]["export"] = str(Path(args.weights).resolve())
    t0 = time.time()
    models = open_run(profile)   # the slot model and the models beside it (rcdm.beside, encoders.custom)
    slots = args.slots or list(models.slots)
    unknown = sorted(set(slots) - set(models.slots))
    if unknown:
        raise SystemExit(f"--slots {unknown}: not representations of this run; expected some of {list(models.slots)}")
    out = Path(args.out or repo_path(profile["rcdm"]["export"]).parent)
    clf = train_shape_classifier(profile, models.image_size, repo_path(profile.get("cache_dir") or ".cache") / args.profile)
    res = shape_agreement(models, clf, n_images=args.n_images, n_per=args.n_per, steps=args.steps,
                          guidance_scale=args.guidance, n_reference=args.n_reference, slots=slots,
                          seed=args.seed, split=args.split)
    res["seconds"] = round(time.time() - t0, 1)
    res["profile"] = args.profile
    print(f"shape classifier accuracy on real {args.split} images at {models.image_size}px: {res['classifier_val_accuracy']:.3f}")
    ref = res.get("neighbour_agreement", {})
    print(f"{'representation':24} shape agreement" + (f"   {res['neighbour_k']}-NN reference ({res['n_reference']} "
                                                       "train images)" if ref else ""))
    for slot, a in res["agreement"].items():
        se = res["agreement_se"][slot]
        print(f"{slot:24} {a:.3f}" + (f" +- {se:.3f}" if se is not None else "        ")
              + (f"     {ref[slot]:.3f}" if slot in ref else ""))
    print(f"null condition: {res['null_confident_fraction']:.3f} of samples classified with confidence >= 0.9 "
          f"(real images: {res['real_confident_fraction']:.3f})")
    out.mkdir(parents=True, exist_ok=True)
    suffix = (f"_slots_n{args.n_images}" if args.slots else "") + (
        "" if args.guidance is None else f"_guidance{args.guidance:g}") + ("_train" if args.split == "train" else "")
    name = f"quality{suffix}.json"
    (out / name).write_text(json.dumps(res, indent=1) + "\n")

    # grids: 8 val images (top row) then 2 samples each, per slot; and 32 null samples
    from rcdm_lib.data import FactorShapes

    ds = FactorShapes("val", size=profile["data"]["size"], length=8, seed=profile["data"]["seed"])
    images, _ = ds.batch(np.arange(8))
    rows = [models.rcdm_view(images)]
    for slot in slots:
        x = models.sample(slot, models.encode(slot, images), n_per=1, steps=args.steps, seed=1,
                          guidance_scale=args.guidance)
        rows.append(x[:, 0])
    grid, null_grid = out / f"samples_by_slot{suffix}.png", out / f"samples_null{suffix}.png"
    save_image_grid(torch.cat(rows), grid, nrow=8, scale=4)
    null = models.sample(None, n=32, n_per=1, steps=args.steps, seed=2)[:, 0]
    save_image_grid(null, null_grid, nrow=8, scale=4)
    print(f"wrote {out / name}, {grid} (rows: real, then {', '.join(slots)}), {null_grid} in {res['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
