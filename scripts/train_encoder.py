"""Train the tiny encoders on the built-in data (FactorShapes) with budgets from _config.yml.

    python scripts/train_encoder.py --profile tiny                     # every method of the profile
    python scripts/train_encoder.py --profile tiny --method simclr --method dino
    python scripts/train_encoder.py --profile tiny --method dino --method barlow --time-budget 2400

Writes <folder>/<method>.safetensors (weights + config) and an entry in <folder>/manifest.json: sha256, exact
command, hardware, training time. The folder is runs/<profile>/encoders (or --out-dir); the shipped encoders.dir
is written only with --export (make book passes it when it trains the models).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))   # this checkout's rcdm_lib, whatever the environment has installed

import torch  # noqa: E402

from rcdm_lib.artifacts import command_line, record_artifact  # noqa: E402
from rcdm_lib.config import add_settings_args, repo_path, settings_from_args  # noqa: E402
from rcdm_lib.data.shapes import FactorShapes  # noqa: E402
from rcdm_lib.encoders.tiny import METHODS, save_tiny_encoder  # noqa: E402
from rcdm_lib.encoders.training import encoder_train_config, time_encoder_step, train_tiny_encoder  # noqa: E402
from rcdm_lib.files import check_writable  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(p)
    p.add_argument("--method", action="append", choices=METHODS, help="repeatable; default: encoders.methods of the profile")
    p.add_argument("--steps", type=int, help="override the profile's step budget (all methods)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the 2-core budget runs two at once)")
    p.add_argument("--out-dir", help="where to write the encoders without --export (default: runs/<profile>/encoders)")
    p.add_argument("--export", nargs="?", const="", default=None, metavar="DIR",
                   help="write the encoders into DIR; --export alone writes encoders.dir of the settings (the shipped "
                        "encoders the book checks)")
    p.add_argument("--device", default=None)
    p.add_argument("--resume", action="store_true",
                   help="continue each method from the newest checkpoint in its run folder (runs/<profile>/"
                        "encoder_runs_<tag of the destination>/<method>, written every --ckpt-every steps): a run "
                        "longer than a session")
    p.add_argument("--restart", action="store_true",
                   help="delete the checkpoints an interrupted run left in the run folders first (make book)")
    p.add_argument("--ckpt-every", type=int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=True,
                   help="on a GPU, capture the whole training step once as a CUDA graph and replay it (default on; "
                        "the tiny encoders' step is launch-bound there); ignored on a CPU")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="train what fits in SECONDS of wall time from the start (make book FROM_SCRATCH=1 gives each "
                        "encoder process its share of the 2-hour budget): times 12 real steps of each method here "
                        "(the first 2 thrown away), then shortens every method's steps by the same factor, at least "
                        "to a tenth of its recipe (the cosine schedule follows the steps); printed, and recorded in "
                        "the manifest (steps, full_steps, time_budget_s)")
    args = p.parse_args(argv)
    t_start = time.time()

    torch.set_num_threads(args.threads)
    prof = settings_from_args(args)
    ecfg, dcfg = prof.get("encoders") or {}, prof.get("data") or {}
    if not ecfg:
        raise SystemExit(f"profile {args.profile!r} has no 'encoders' section in _config.yml; nothing to train")
    if args.export == "" and not ecfg.get("dir"):
        raise SystemExit("--export without a folder writes encoders.dir, which the settings do not set; give a "
                         "folder (--export DIR)")
    if args.export is not None:
        out_dir = repo_path(args.export or ecfg["dir"])
    else:
        out_dir = repo_path(args.out_dir or f"runs/{prof['profile']}/encoders")
    try:   # before any training: a run that cannot write its encoders should not start
        check_writable(out_dir / "manifest.json", "the encoders' folder")
    except ValueError as e:
        raise SystemExit(str(e)) from None
    from rcdm_lib.config import resolve_device

    device = resolve_device(args.device or prof.get("device", "auto"))
    methods = args.method or ecfg.get("methods") or list(METHODS)
    lengths = dcfg.get("lengths") or {}
    seed = int(dcfg.get("seed", prof.get("seed", 0)))
    ds = FactorShapes("train", size=int(dcfg.get("size", 32)), length=lengths.get("train"), seed=seed)
    t0 = time.time()
    images, factors = ds.all_uint8()
    print(f"rendered {ds} in {time.time() - t0:.1f}s", flush=True)
    command = command_line("scripts/train_encoder.py", sys.argv[1:])
    cfgs = {m: encoder_train_config(prof, m, {"steps": args.steps} if args.steps else None) for m in methods}
    full = {m: c.steps for m, c in cfgs.items()}
    if args.time_budget is not None:
        cfgs = fit_time_budget(args.time_budget, cfgs, images, factors["shape"], device, t_start)
    from rcdm_lib.training.checkpoint import latest_checkpoint, list_checkpoints

    # the run folders of this destination (two runs writing elsewhere, e.g. the tests', never share one)
    tag = hashlib.sha256(str(out_dir.resolve()).encode()).hexdigest()[:8]
    runs = {m: repo_path(f"runs/{prof['profile']}/encoder_runs_{tag}/{m}") for m in cfgs}
    if args.restart:
        for f in [f for d in runs.values() for f in list_checkpoints(d)]:
            f.unlink()
    held = [str(d) for d in runs.values() if latest_checkpoint(d, log=lambda s: None) is not None]
    if held and not args.resume:
        raise SystemExit(f"{', '.join(held)} already hold checkpoints; pass --resume to continue, or delete them")
    for method, cfg in cfgs.items():
        budget = {"full_steps": full[method], "time_budget_s": args.time_budget} if args.time_budget is not None else {}
        model, hist = train_tiny_encoder(images, factors["shape"], cfg, device=device, progress=sys.stderr.isatty(),
                                         log=lambda s: print(s, flush=True), cuda_graph=args.cuda_graph,
                                         run_dir=runs[method], ckpt_every=args.ckpt_every)
        path = save_tiny_encoder(model, out_dir / f"{method}.safetensors",
                                 extra={"train": hist["config"], "data": ds.spec, "seconds": hist["seconds"]})
        entry = record_artifact(path, command=command, device=device, train_seconds=hist["seconds"], steps=cfg.steps,
                                data=ds.spec, final_loss=hist["loss"][-1],
                                **budget, **({"cuda_graph": True} if hist["cuda_graph"] else {}))
        print(f"saved {path} ({entry['bytes'] / 1e6:.2f} MB) after {hist['seconds']:.0f}s", flush=True)
        for f in list_checkpoints(runs[method]):   # done: the file above is the result, the run folder is empty
            f.unlink()
    return 0


def fit_time_budget(seconds: float, cfgs: dict, images, labels, device, t_start: float) -> dict:
    """cfgs with their steps shortened by one factor so that they train one after the other in `seconds` from
    t_start (see --time-budget)."""
    from rcdm_lib.training.budget import scaled_steps

    step_s = {m: time_encoder_step(images, labels, c, device=device) for m, c in cfgs.items()}
    left = seconds - (time.time() - t_start)
    left -= 5 * len(cfgs) + 0.02 * max(left, 0)  # saving each encoder, and the rate's drift
    steps = scaled_steps(left, step_s, {m: c.steps for m, c in cfgs.items()})
    need = sum(steps[m] * step_s[m] for m in cfgs)
    for m, c in cfgs.items():
        print(f"--time-budget {seconds:.0f} s: {m} {steps[m]} of {c.steps} steps ({step_s[m] * 1000:.0f} ms each)",
              flush=True)
    print(f"--time-budget {seconds:.0f} s: {need:.0f} s of training planned, {left:.0f} s left"
          + ("; the fewest steps allowed do not fit, so the budget is overrun" if need > left + 1 else "")
          + ("; shorter than the recipe: expect weaker encoders" if steps != {m: c.steps for m, c in cfgs.items()}
             else ""), flush=True)
    return {m: replace(c, steps=steps[m]) for m, c in cfgs.items()}


if __name__ == "__main__":
    sys.exit(main())
