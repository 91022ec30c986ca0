#!/usr/bin/env python
"""Benchmark the conditioned ADM UNet: forward+backward images/s and peak memory.

    python scripts/bench_unet.py                 # tiny config and the 128px official config
    python scripts/bench_unet.py --configs tiny --batch 64 --iters 10

On CUDA it also measures bf16 autocast and channels_last. Each case runs in a fresh
subprocess so that the CPU peak (max RSS) belongs to that case alone. Prints a table and
the machine it ran on.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rcdm_lib.bench import machine_line, run_isolated  # noqa: E402

CONFIGS = {
    # the tiny profile's size class: 32px, 32 channels
    "tiny": dict(image_size=32, model_channels=32, num_res_blocks=1, channel_mult=(1, 2, 2),
                 attention_resolutions=(8,), num_heads=2, rep_dim=64),
    # the released RCDM checkpoints (DESIGN.md): 422,603,782 parameters with a 2048-d representation
    "128px": dict(image_size=128, model_channels=256, num_res_blocks=2, channel_mult=(1, 1, 2, 3, 4),
                  attention_resolutions=(32, 16, 8), num_heads=4, rep_dim=2048),
}


def run_case(config: str, device: str, batch: int, iters: int, bf16: bool, channels_last: bool, queue) -> None:
    import torch

    from rcdm_lib.unet import UNet, UNetConfig

    torch.manual_seed(0)
    cfg = UNetConfig(**CONFIGS[config])
    model = UNet(cfg).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(batch, 3, cfg.image_size, cfg.image_size, device=device).to(memory_format=fmt)
    t = torch.randint(0, 1000, (batch,), device=device)
    rep = torch.randn(batch, cfg.rep_dim, device=device)

    def step():
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x, t, rep=rep)
        out.float().square().mean().backward()
        model.zero_grad(set_to_none=True)

    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
    dt = time.perf_counter() - t0
    queue.put(dict(config=config, device=device, batch=batch, bf16=bf16, channels_last=channels_last,
                   params=sum(p.numel() for p in model.parameters()), img_s=batch * iters / dt, peak_mib=peak))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: tiny 64, 128px 1 on CPU / 8 on GPU)")
    p.add_argument("--iters", type=int, default=None, help="timed iterations (default: 5, 2 for 128px on CPU)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args()

    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    cases = []
    for c in args.configs:
        batch = args.batch or (64 if c == "tiny" else (1 if device == "cpu" else 8))
        iters = args.iters or (2 if (c == "128px" and device == "cpu") else 5)
        variants = [(False, False)]
        if device.startswith("cuda"):
            variants += [(True, False), (False, True), (True, True)]
        cases += [(c, device, batch, iters, bf16, cl) for bf16, cl in variants]

    rows = run_isolated(run_case, cases)

    print(f"machine: {machine_line()}")
    peak_name = "peak GPU MiB" if device.startswith("cuda") else "peak RSS MiB"
    print(f"{'config':8} {'device':6} {'batch':>5} {'bf16':>5} {'ch_last':>7} {'params':>12} {'img/s':>9} {peak_name:>13}")
    for r in rows:
        print(f"{r['config']:8} {r['device']:6} {r['batch']:5d} {str(r['bf16']):>5} {str(r['channels_last']):>7} "
              f"{r['params']:12,d} {r['img_s']:9.2f} {r['peak_mib']:13.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_line(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
