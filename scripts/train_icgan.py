#!/usr/bin/env python
"""Train the IC-GAN baseline (Casanova et al. 2021) on the built-in data, conditioned on one tiny
encoder slot, with the budget of the profile's `icgan` section in _config.yml.

    python scripts/train_icgan.py --profile tiny                 # artifacts/tiny/icgan/icgan.safetensors
    python scripts/train_icgan.py --profile smoke --steps 5      # seconds

Checkpoints (generator, discriminator, EMA, optimisers, RNG) go to icgan.out atomically;
--resume continues exactly. At the end the EMA generator gets standing batch-norm
statistics and is exported (safetensors, config in the metadata) with a manifest entry
(sha256, command, hardware, time) and a sample grid next to it. The paper's IC-GAN at
128px is not trained here: the imagenet128 profile loads the official generator file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from rcdm_lib.artifacts import command_line, record_artifact  # noqa: E402
from rcdm_lib.config import add_settings_args, repo_path, resolve_device, settings_from_args  # noqa: E402
from rcdm_lib.files import add_export_arg, export_target, not_exported_note  # noqa: E402
from rcdm_lib.icgan import (Generator, ICGANConfig, ICGANTrainConfig, icgan_training_data, sample_icgan,  # noqa: E402
                            save_icgan, train_icgan)



def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(p)
    p.add_argument("--steps", type=int, help="override icgan.train.steps")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2: the 2-core budget)")
    p.add_argument("--out", help="run folder for checkpoints (default: icgan.out)")
    add_export_arg(p, "icgan.export", "the EMA generator (and samples.png beside it)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--restart", action="store_true",
                   help="delete the checkpoints in --out first (e.g. after the encoder was retrained)")
    p.add_argument("--device", help="cpu, cuda or auto (default: the profile's device)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    profile = settings_from_args(args)
    ic = profile.get("icgan") or {}
    if not ic.get("export") and not args.export:
        raise SystemExit(f"profile {args.profile!r} has no icgan.export in _config.yml: the built-in profiles "
                         "(smoke, tiny) train IC-GAN; imagenet128 loads the official file (icgan.weights)")
    try:   # before any training: a run that cannot write its export should not start
        export = export_target(args.export, ic.get("export"), "icgan.export")
    except ValueError as e:
        raise SystemExit(str(e)) from None
    device = resolve_device(args.device or profile.get("device", "auto"))
    images, feats, provenance = icgan_training_data(profile, device=device)
    model_cfg = ICGANConfig(**{**(ic.get("model") or {}), "image_size": ic["image_size"], "rep_dim": feats.shape[1]})
    train = dict(ic.get("train") or {})
    train.setdefault("seed", profile.get("seed", 0))
    if args.steps is not None:
        train["steps"] = args.steps
    train_cfg = ICGANTrainConfig.from_dict(train)
    out = repo_path(args.out or ic.get("out") or f"runs/{args.profile}/icgan")
    if args.restart:
        from rcdm_lib.training.checkpoint import list_checkpoints

        for f in list_checkpoints(out) + [out / "metrics.jsonl"]:
            f.unlink(missing_ok=True)
    n_g = sum(p.numel() for p in Generator(model_cfg).parameters())
    print(f"profile {args.profile}: IC-GAN at {model_cfg.image_size}px conditioned on {provenance['slot']} "
          f"({feats.shape[1]}-d), G {n_g:,} parameters, {len(images)} training images, k_nn {train_cfg.k_nn}, "
          f"{train_cfg.steps} steps of batch {train_cfg.batch_size} on {device}; run folder {out}", flush=True)
    res = train_icgan(model_cfg, train_cfg, images, feats, run_dir=out, resume=args.resume, device=device,
                      progress=not args.no_progress, provenance=provenance)
    if res.step < train_cfg.steps:
        return 1
    if export is None:
        print(not_exported_note("icgan.export", ic.get("export")), flush=True)
        return 0
    save_icgan(export, res.G_ema, extra={"slot": provenance["slot"], "step": res.step, "train": train_cfg.to_dict(),
                                         "data": provenance})
    # a preview: the first 8 training images and 4 samples conditioned on each representation
    from rcdm_lib.viz import save_image_grid

    x = images[:8].float() / 127.5 - 1
    s = sample_icgan(res.G_ema, feats[:8], n_per=4, seed=0)
    save_image_grid(torch.cat([x[:, None], s], 1).flatten(0, 1), export.parent / "samples.png", nrow=5, scale=4)
    last = res.history[-1] if res.history else {}
    record_artifact(export, command=command_line("scripts/train_icgan.py", argv or sys.argv[1:]), device=device,
                    train_seconds=res.seconds, steps=res.step, slot=provenance["slot"],
                    final_losses={k: last[k] for k in ("d_real", "d_fake", "g") if k in last})
    print(f"exported the EMA generator to {export} ({export.stat().st_size / 1e6:.2f} MB) after {res.seconds:.0f} s",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
