#!/usr/bin/env python
"""Train an RCDM: the same script on a 2-core laptop (tiny profile) and on many GPUs.

    python scripts/train.py --profile tiny                     # the tiny book's slot model
    torchrun --nproc_per_node=8 scripts/train.py --profile imagenet128 \\
        --config my_paths.yaml --encoder dino --layer backbone   # data.root: a folder with train/ and val/
    # multi-node: torchrun --nnodes=4 --nproc_per_node=8 --rdzv_backend=c10d \\
    #   --rdzv_endpoint=HOST:29500 --rdzv_id=rcdm scripts/train.py --profile imagenet128 ...

The profile (`_config.yml`, section `rcdm`) gives the UNet, the diffusion process and the
optimisation; every option below overrides it. Checkpoints go to --out (atomically, the
last few kept); --resume continues exactly where a run stopped. Rank 0 writes
metrics.jsonl, TensorBoard (when installed), sample grids and checkpoints. gloo on CPU,
nccl on GPU, bf16 autocast on CUDA (and, with --cpu-bf16, on CPUs with bf16 hardware).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from rcdm_lib.artifacts import command_line, file_sha256, record_artifact  # noqa: E402
from rcdm_lib.config import add_settings_args, settings_from_args  # noqa: E402
from rcdm_lib.files import add_export_arg, export_target, not_exported_note  # noqa: E402
from rcdm_lib.settings import SettingsError  # noqa: E402
from rcdm_lib.training import DiffusionConfig, TrainConfig, init_distributed, train_rcdm  # noqa: E402
from rcdm_lib.precision import use_bf16  # noqa: E402
from rcdm_lib.training.distributed import cleanup  # noqa: E402
from rcdm_lib.training.sources import folder_source, named_encoder, shapes_source, tiny_slot_source  # noqa: E402
from rcdm_lib.unet import UNet, UNetConfig, save_unet  # noqa: E402

TRAIN_FLAGS = {  # option -> TrainConfig field
    "steps": "steps", "batch_size": "batch_size", "grad_accum": "grad_accum", "lr": "lr",
    "weight_decay": "weight_decay", "warmup_steps": "warmup_steps", "lr_final": "lr_final",
    "lr_decay_start": "lr_decay_start", "lr_decay_end": "lr_decay_end", "ema_rate": "ema_rate",
    "grad_clip": "grad_clip", "p_null": "p_null",
    "seed": "seed", "log_every": "log_every", "ckpt_every": "ckpt_every", "keep_last": "keep_last",
    "sample_every": "sample_every", "bf16": "bf16", "cpu_bf16": "cpu_bf16", "compile": "compile",
    "cuda_graph": "cuda_graph",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(p)
    p.add_argument("--out", help="run folder for checkpoints, metrics and grids (default: rcdm.out of the profile)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--init-from", help="a new run from another run's checkpoint or exported .safetensors model (same "
                                       "network): its weights and EMA, a fresh optimizer, step 0, this run's "
                                       "conditioning statistics (e.g. after an encoder was retrained)")
    p.add_argument("--device", help="cpu, cuda or auto (default: the profile's device)")
    p.add_argument("--threads", type=int, help="torch CPU threads per process")
    g = p.add_argument_group("conditioning (imagenet128: one model per representation, as in the paper)")
    g.add_argument("--encoder", help="train a single-representation RCDM on this encoder: supervised, dino, simclr, "
                                     "barlow, vicreg, swav, or a name of encoders.custom in your --config file (on "
                                     "data.root/train, or on the built-in data at smoke and tiny)")
    g.add_argument("--layer", default="backbone", help="backbone (trunk) or head (projector)")
    g.add_argument("--data", help="overrides data.root: a folder holding train/ and val/, each an ImageFolder "
                                  "(ImageNet layout); the model trains on train/")
    g = p.add_argument_group("optimisation (override the profile)")
    g.add_argument("--steps", type=int, help="total optimizer steps")
    g.add_argument("--batch-size", type=int, help="per-process batch size")
    g.add_argument("--grad-accum", type=int, help="micro-batches per step")
    g.add_argument("--lr", type=float, help="AdamW learning rate (paper: 1e-4)")
    g.add_argument("--warmup-steps", type=int, help="linear learning-rate warm-up steps")
    g.add_argument("--lr-final", type=float, help="cosine decay of the learning rate to this value between "
                   "--lr-decay-start and --lr-decay-end (steps), then held (default: no decay)")
    g.add_argument("--lr-decay-start", type=int, help="the step where the decay to --lr-final starts")
    g.add_argument("--lr-decay-end", type=int, help="the step where the learning rate reaches --lr-final")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay (paper: 0)")
    g.add_argument("--ema-rate", type=float, help="EMA rate (paper: 0.9999)")
    g.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value")
    g.add_argument("--p-null", type=float, help="probability of the null condition (slot models)")
    g.add_argument("--slot-weight", action="append", metavar="SLOT=W",
                   help="relative frequency of a slot in the batches (slot models; repeatable; unnamed slots weigh 1), "
                        "e.g. --slot-weight dino_backbone=3 when a warm start follows a retrained DINO")
    g.add_argument("--seed", type=int, help="seed of the initial weights and of every example's noise")
    g.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast on CUDA")
    g.add_argument("--cpu-bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast on a CPU with AMX/AVX512-BF16 (1.2-1.4x for the tiny UNet on the 2-core Xeon); "
                        "fp32 on other CPUs whatever this says")
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network for the training step (a run may change it on --resume)")
    g.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="capture the whole training step (network, loss, AdamW, EMA) as one CUDA graph and replay it: "
                        "for small models whose GPU step is bound by kernel launches (the tiny profile); one process, "
                        "grad_accum 1; a run may change it on --resume")
    g = p.add_argument_group("bookkeeping")
    g.add_argument("--log-every", type=int, help="steps between metrics lines")
    g.add_argument("--ckpt-every", type=int, help="steps between checkpoints")
    g.add_argument("--keep-last", type=int, help="checkpoints kept")
    g.add_argument("--sample-every", type=int, help="steps between sample grids (0: none)")
    add_export_arg(g, "rcdm.export")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="finish within this many seconds of the script's start (one process): a fresh run times a "
                        "few training steps here, then trains the steps that fit (at most --steps, at least a tenth "
                        "of them), a shortened run with a falling rate (rcdm_lib/training/budget.py); the choice is "
                        "saved in the run's config.json and a --resume keeps it. make book FROM_SCRATCH=1 uses it")
    return p


def configs_from(profile: dict, args) -> tuple[dict, DiffusionConfig, TrainConfig]:
    r = profile.get("rcdm")
    if not r:
        raise SystemExit(f"profile {profile['profile']!r} has no 'rcdm' section in _config.yml")
    train = dict(r.get("train") or {})
    train.setdefault("seed", profile.get("seed", 0))
    for opt, field in TRAIN_FLAGS.items():
        v = getattr(args, opt)
        if v is not None:
            train[field] = v
    if args.slot_weight:
        train["slot_weights"] = {**(train.get("slot_weights") or {}), **_parse_slot_weights(args.slot_weight)}
    try:   # the command-line options are checked as the settings were (key, type, range)
        train_cfg = TrainConfig.from_dict(train)
    except SettingsError as e:
        raise SystemExit(f"{e}\n(an option such as --steps sets the rcdm.train key of its name)") from None
    return dict(r.get("unet") or {}), DiffusionConfig(**(r.get("diffusion") or {})), train_cfg


def export_setting(profile: dict, args) -> tuple[str, str | None]:
    """(the settings key a bare --export writes, its value): rcdm.checkpoints.<representation> for --encoder, or
    rcdm.export where that is the run's single model (data.root); without --encoder, rcdm.export (the slot model
    on the built-in data)."""
    r = profile["rcdm"]
    if not args.encoder:
        return "rcdm.export", r.get("export")
    custom = (profile.get("encoders") or {}).get("custom") or {}
    layer = {"trunk": "backbone", "projector": "head"}.get(args.layer, args.layer)
    name = args.encoder if args.encoder in custom else f"{args.encoder}_{layer}"
    path = (r.get("checkpoints") or {}).get(name)
    if path is None and (profile.get("data") or {}).get("root") and r.get("export"):
        return "rcdm.export", r["export"]
    return f"rcdm.checkpoints.{name}", path


def _parse_slot_weights(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, w = item.partition("=")
        try:
            weight = float(w)
        except ValueError:  # also no "=" (w is then empty)
            weight = None
        if weight is None or not name.strip():
            raise SystemExit(f"--slot-weight expects SLOT=WEIGHT, e.g. dino_backbone=3; got {item!r}")
        out[name.strip()] = weight
    return out


def fit_time_budget(args, unet_cfg, diff_cfg, train_cfg, data, out: Path, info, t_start: float) -> TrainConfig:
    """train_cfg shortened to what fits in args.time_budget seconds from t_start (see --time-budget)."""
    from rcdm_lib.training.budget import budget_steps, budgeted_config, min_budget_steps
    from rcdm_lib.training.checkpoint import latest_checkpoint

    if info.world_size != 1:
        raise SystemExit(f"--time-budget needs one process (each would time its own steps), got {info.world_size}")
    if args.resume and latest_checkpoint(out) is not None:  # the steps and schedule its start chose
        saved = json.loads((out / "config.json").read_text())["train"]
        keep = ("steps", "lr_final", "lr_decay_start", "lr_decay_end", "warmup_steps")
        print(f"--time-budget: resuming the run in {out} with the {saved['steps']} steps its start chose", flush=True)
        return dataclasses.replace(train_cfg, **{k: saved[k] for k in keep})
    n_probe = min(20, max(1, train_cfg.steps // 20))
    probe = dataclasses.replace(train_cfg, log_every=10**9, ckpt_every=10**9, sample_every=0)
    seconds = []
    for n in (min(2, n_probe), n_probe):  # real steps of this run's config, then thrown away; the first call
        with tempfile.TemporaryDirectory(prefix="rcdm_budget_") as tmp:  # warms up the kernels, the second is timed
            seconds.append(train_rcdm(unet_cfg, diff_cfg, probe, data, Path(tmp), info=info, progress=False,
                                      stop_after=n).seconds)
    step_s = seconds[-1] / n_probe
    left = args.time_budget - (time.time() - t_start)
    left -= 10 + 0.02 * max(left, 0)  # the export, the last checkpoint and the rate's day-long drift
    steps = budget_steps(left, step_s, train_cfg.steps, min_budget_steps(train_cfg.steps))
    cfg = budgeted_config(train_cfg, steps)
    img_s = train_cfg.batch_size / step_s
    if steps == train_cfg.steps:
        print(f"--time-budget {args.time_budget:.0f} s: the full {steps} steps fit ({img_s:.0f} img/s here, "
              f"{left:.0f} s left)", flush=True)
    else:
        over = steps * step_s > left
        print(f"--time-budget {args.time_budget:.0f} s: {steps} of {train_cfg.steps} steps at {img_s:.0f} img/s "
              f"({left:.0f} s left), lr {cfg.lr:g} falling to {cfg.lr_final:g} between steps {cfg.lr_decay_start} "
              f"and {cfg.lr_decay_end}; expect weaker samples than the full recipe"
              + ("; the fewest steps allowed do not fit, so the budget is overrun" if over else ""), flush=True)
    return cfg


def main(argv=None) -> int:
    t_start = time.time()
    args = build_parser().parse_args(argv)
    profile = settings_from_args(args, overrides={"data": {"root": args.data}} if args.data else None)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = init_distributed(args.device or profile.get("device", "auto"))
    unet_kw, diff_cfg, train_cfg = configs_from(profile, args)
    r = profile["rcdm"]
    try:   # before the data and any training: a run that cannot write its export should not start
        export_key, export_default = export_setting(profile, args)
        export = export_target(args.export, export_default, export_key)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if profile.get("data", {}).get("root"):
        if not args.encoder:
            raise SystemExit("real-data training needs --encoder (supervised, dino, simclr, barlow, vicreg, swav, or "
                             "a name of encoders.custom)")
        data = folder_source(profile, args.encoder, args.layer, info.device)
        unet_cfg = UNetConfig(**{**unet_kw, "image_size": r["image_size"], "rep_dim": data.rep_dim})
    elif args.encoder:   # one representation on the built-in data
        try:
            encoder = named_encoder(profile, args.encoder, args.layer, info.device)
        except (ValueError, FileNotFoundError) as e:   # one sentence naming the key or the file
            raise SystemExit(str(e)) from None
        data = shapes_source(profile, encoder, device=info.device)
        unet_cfg = UNetConfig(**{**unet_kw, "image_size": r["image_size"], "rep_dim": data.rep_dim})
    else:
        data = tiny_slot_source(profile, device=info.device,  # the encoders run where the model trains
                                p_null=train_cfg.p_null, slot_weights=train_cfg.slot_weights)
        unet_cfg = UNetConfig(**{**unet_kw, "image_size": r["image_size"], "rep_slots": data.layout.slots})
    own = args.encoder and not (profile.get("data") or {}).get("root")   # beside the slot model: a folder of its own
    out = Path(args.out or (f"runs/{profile['profile']}/rcdm_{args.encoder}" if own else None)
               or r.get("out") or f"runs/{profile['profile']}/rcdm")
    if info.is_main:
        with torch.device("meta"):  # count only: no allocation (422M parameters at imagenet128)
            n = sum(p.numel() for p in UNet(unet_cfg).parameters())
        bf16 = use_bf16(info.device, cuda=train_cfg.bf16, cpu=train_cfg.cpu_bf16)
        print(f"profile {profile['profile']}: {unet_cfg.image_size}px UNet, {n:,} parameters, "
              f"{len(data)} training examples, {info.world_size} process(es) on {info.device}"
              f"{' in bf16' if bf16 else ''}; run folder {out}", flush=True)
    if args.time_budget is not None:
        train_cfg = fit_time_budget(args, unet_cfg, diff_cfg, train_cfg, data, out, info, t_start)
    # the warm start's hash now, before training: the file may be replaced by the time this run exports
    init_sha = {"init_from_sha256": file_sha256(args.init_from)} if args.init_from and info.is_main else {}
    res = train_rcdm(unet_cfg, diff_cfg, train_cfg, data, out, resume=args.resume, info=info, init_from=args.init_from,
                     progress=not args.no_progress)
    if info.is_main and res.step == train_cfg.steps:
        if export is None:
            print(not_exported_note(export_key, export_default), flush=True)
        else:
            save_unet(export, res.ema, extra={"step": res.step, "diffusion": vars(diff_cfg),
                                              "train": train_cfg.to_dict(), "data": data.describe()})
            record_artifact(export, command=command_line("scripts/train.py", argv or sys.argv[1:]),
                            device=info.device, train_seconds=res.seconds, steps=res.step,
                            world_size=info.world_size, **init_sha)
            print(f"exported the EMA model to {export} ({export.stat().st_size / 1e6:.1f} MB)")
    cleanup(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
