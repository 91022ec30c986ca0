#!/usr/bin/env python
"""Benchmark RCDM training steps (hybrid loss + AdamW + EMA): images/s and peak memory.

    python scripts/bench_train.py                         # the tiny profile's UNet on CPU
    python scripts/bench_train.py --configs tiny 128px    # on CUDA: fp32/bf16 x channels_last x compile
    python scripts/bench_train.py --profile smoke --config mine.yaml   # the UNet of your own settings

Synthetic data; each case runs in a fresh subprocess (its own peak memory). Prints a table
and the machine it ran on.
"""
from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rcdm_lib.config import add_settings_args, settings_from_args  # noqa: E402


def configs(settings: dict) -> dict:
    """{the settings' profile name: its RCDM UNet, "128px": the released flags}."""
    r = settings["rcdm"]
    return {
        settings["profile"]: dict(**r["unet"], image_size=r["image_size"], rep_dim=1024),
        "128px": dict(image_size=128, model_channels=256, num_res_blocks=2, channel_mult=(1, 1, 2, 3, 4),
                      attention_resolutions=(32, 16, 8), num_heads=4, rep_dim=2048),
    }


def run_case(name, cfg_kw, device, batch, iters, bf16, channels_last, compile_, threads, queue):
    import torch

    from rcdm_lib.diffusion import GaussianDiffusion
    from rcdm_lib.training.ema import EMA
    from rcdm_lib.unet import UNet, UNetConfig

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = UNetConfig(**cfg_kw)
    model = UNet(cfg).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    ema = EMA(model, 0.999)
    fwd = torch.compile(model) if compile_ else model
    dev_type = torch.device(device).type
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True if dev_type == "cuda" else None)  # as in training
    d = GaussianDiffusion.from_official(1000, "linear", learn_sigma=cfg.learn_sigma)
    x0 = torch.rand(batch, 3, cfg.image_size, cfg.image_size, device=device).mul(2).sub(1).to(memory_format=fmt)
    rep = torch.randn(batch, cfg.rep_dim, device=device)

    def step():
        t = torch.randint(0, 1000, (batch,), device=device)
        with torch.autocast(device_type=dev_type, dtype=torch.bfloat16, enabled=bf16):
            loss = d.training_losses(fwd, x0, t, model_kwargs={"rep": rep})["loss"].float().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(model)

    for _ in range(2 if compile_ else 1):
        step()
    if dev_type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if dev_type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dt = time.perf_counter() - t0
    queue.put(dict(config=name, device=device, batch=batch, bf16=bf16, channels_last=channels_last,
                   compile=compile_, threads=torch.get_num_threads(),
                   params=sum(p.numel() for p in model.parameters()), img_s=batch * iters / dt, peak_mib=peak))


def _parse_variant(v: str) -> tuple[bool, bool, bool]:
    """'bf16+cl+compile' -> (bf16, channels_last, compile)."""
    parts = set(v.split("+"))
    unknown = parts - {"fp32", "bf16", "cl", "compile"}
    if unknown:
        raise SystemExit(f"unknown variant part(s) {sorted(unknown)} in {v!r}; expected fp32|bf16 [+cl] [+compile]")
    return "bf16" in parts, "cl" in parts, "compile" in parts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(p)
    p.add_argument("--configs", nargs="+", default=None,
                   help="the profile's name (its UNet) and/or 128px (default: the profile's on CPU, both on CUDA)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=None, help="default: tiny 64; 128px 16 on CUDA, 1 on CPU")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--compile", action="store_true", help="also try torch.compile on CPU")
    p.add_argument("--variants", nargs="+", metavar="V",
                   help="cases to run, e.g. fp32 bf16 bf16+cl bf16+compile (cl: channels_last); "
                        "default: all 8 combinations on CUDA")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    settings = settings_from_args(args, check_files=False)

    import torch

    from rcdm_lib.bench import machine_line, run_isolated

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    cuda = device.startswith("cuda")
    names = args.configs or ([args.profile, "128px"] if cuda else [args.profile])
    all_cfgs = configs(settings)
    unknown = [n for n in names if n not in all_cfgs]
    if unknown:
        raise SystemExit(f"--configs {' '.join(unknown)}: expected some of {sorted(all_cfgs)}")
    cases = []
    for name in names:
        batch = args.batch or (64 if name != "128px" else (16 if cuda else 1))
        if args.variants:
            variants = [_parse_variant(v) for v in args.variants]
        elif cuda:
            variants = list(itertools.product([False, True], [False, True], [False, True]))
        else:
            variants = [(False, False, False)] + ([(False, False, True)] if args.compile else [])
        cases += [(name, all_cfgs[name], device, batch, args.iters, bf, cl, co, args.threads)
                  for bf, cl, co in variants]
    print(f"machine: {machine_line()}")
    mem = "peak GPU MiB" if cuda else "peak RSS MiB"
    print(f"{'config':7} {'batch':>5} {'bf16':>5} {'ch_last':>7} {'compile':>7} {'threads':>7} {'params':>12} "
          f"{'img/s':>9} {mem:>13}", flush=True)

    def show(r):  # each row as soon as its case ends, so a run cut short still reports
        print(f"{r['config']:7} {r['batch']:5d} {str(r['bf16']):>5} {str(r['channels_last']):>7} "
              f"{str(r['compile']):>7} {r['threads']:7d} {r['params']:12,d} {r['img_s']:9.1f} {r['peak_mib']:13.0f}",
              flush=True)

    rows = run_isolated(run_case, cases, on_row=show)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine_line(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
