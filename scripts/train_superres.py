#!/usr/bin/env python
"""Train the super-resolution diffusion model of a built-in-data profile (the paper's Fig. 14).

    python scripts/train_superres.py --profile tiny          # 16px -> 32px, a few minutes on a CPU
    python scripts/train_superres.py --profile tiny --resume

ADM's SuperResModel on our UNet: the low-resolution image (the RCDM resolution, made the
way the RCDM's training images are made) is upsampled and concatenated to the noisy
high-resolution image. The profile (`_config.yml`, section `superres`) gives the sizes,
the UNet, the diffusion process and the optimisation; the options below override it.
The EMA weights are exported to superres.export with a manifest entry (sha256, command,
hardware, time). At imagenet128 the paper uses ADM's released upsampler instead
(superres.checkpoint); there is nothing to train.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from rcdm_lib.artifacts import command_line, record_artifact  # noqa: E402
from rcdm_lib.config import add_settings_args, resolve_device, settings_from_args  # noqa: E402
from rcdm_lib.files import add_export_arg, export_target, not_exported_note  # noqa: E402
from rcdm_lib.superres import SuperResConfig, SuperResUNet, save_superres, shapes_superres_source, train_superres  # noqa: E402
from rcdm_lib.training import DiffusionConfig, TrainConfig  # noqa: E402

TRAIN_FLAGS = ("steps", "batch_size", "lr", "warmup_steps", "ema_rate", "grad_clip", "seed", "log_every",
               "ckpt_every")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(p)
    p.add_argument("--out", help="run folder for checkpoints and metrics (default: superres.out of the profile)")
    add_export_arg(p, "superres.export")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--device", help="cpu, cuda or auto (default: the profile's device)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--steps", type=int, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, help="batch size")
    p.add_argument("--lr", type=float, help="AdamW learning rate")
    p.add_argument("--warmup-steps", type=int, help="linear learning-rate warm-up steps")
    p.add_argument("--ema-rate", type=float, help="EMA rate")
    p.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value")
    p.add_argument("--seed", type=int, help="seed of the initial weights and of every example's noise")
    p.add_argument("--log-every", type=int, help="steps between metrics lines")
    p.add_argument("--ckpt-every", type=int, help="steps between checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def configs_from(profile: dict, args) -> tuple[SuperResConfig, DiffusionConfig, TrainConfig]:
    name = profile["profile"]
    sr = profile.get("superres")
    if not sr:
        raise SystemExit(f"profile {name!r} has no 'superres' section in _config.yml")
    if "checkpoint" in sr:
        raise SystemExit(f"profile {name!r} uses the released ADM upsampler (superres.checkpoint); "
                         "there is nothing to train")
    rcdm_size = (profile.get("rcdm") or {}).get("image_size")
    if rcdm_size is not None and sr["small_size"] != rcdm_size:
        raise SystemExit(f"superres.small_size is {sr['small_size']} but the RCDM samples are {rcdm_size}px "
                         f"(rcdm.image_size); set superres.small_size: {rcdm_size} in _config.yml")
    model = SuperResConfig(**{**(sr.get("unet") or {}), "image_size": sr["large_size"],
                              "small_size": sr["small_size"]})
    train = dict(sr.get("train") or {})
    train.setdefault("seed", profile.get("seed", 0))
    for field in TRAIN_FLAGS:
        if getattr(args, field) is not None:
            train[field] = getattr(args, field)
    try:   # the command-line options are checked as the settings were (key, type, range)
        train_cfg = TrainConfig.from_dict(train, where="superres.train")
    except ValueError as e:
        raise SystemExit(f"{e}\n(an option such as --steps sets the superres.train key of its name)") from None
    return model, DiffusionConfig(**(sr.get("diffusion") or {})), train_cfg


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    profile = settings_from_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_cfg, diff_cfg, train_cfg = configs_from(profile, args)
    sr, data_cfg = profile["superres"], profile["data"]
    try:   # before any training: a run that cannot write its export should not start
        export = export_target(args.export, sr.get("export"), "superres.export")
    except ValueError as e:
        raise SystemExit(str(e)) from None
    device = resolve_device(args.device or profile.get("device", "auto"))
    data = shapes_superres_source(data_cfg["size"], data_cfg["seed"], sr["large_size"], sr["small_size"],
                                  sr["train_length"])
    out = Path(args.out or sr.get("out") or f"runs/{profile['profile']}/superres")
    with torch.device("meta"):
        n = sum(p.numel() for p in SuperResUNet(model_cfg).parameters())
    print(f"profile {profile['profile']}: {sr['small_size']} -> {sr['large_size']}px super-resolution UNet, "
          f"{n:,} parameters, {len(data)} training pairs, {train_cfg.steps} steps of {train_cfg.batch_size} on "
          f"{device}; run folder {out}", flush=True)
    res = train_superres(model_cfg, diff_cfg, train_cfg, data, out, resume=args.resume, device=device,
                         progress=not args.no_progress)
    if res.step == train_cfg.steps and export is None:
        print(f"trained in {res.seconds:.0f} s; " + not_exported_note("superres.export", sr.get("export")))
    elif res.step == train_cfg.steps:
        save_superres(export, res.ema, extra={"step": res.step, "diffusion": vars(diff_cfg),
                                              "train": train_cfg.to_dict(), "data": data.describe()})
        record_artifact(export, command=command_line("scripts/train_superres.py", argv or sys.argv[1:]),
                        device=device, train_seconds=res.seconds, steps=res.step)
        print(f"trained in {res.seconds:.0f} s; exported the EMA model to {export} "
              f"({export.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
