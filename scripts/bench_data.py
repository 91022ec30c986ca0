"""Images per second of the built-in data generator (FactorShapes), per image size.

    python scripts/bench_data.py [--n 4096] [--batch 1024] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))   # this checkout's rcdm_lib, whatever the environment has installed

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    from rcdm_lib.bench import machine_line
    from rcdm_lib.data.shapes import SIZES, FactorShapes

    print(machine_line(), flush=True)
    results = {}
    for size in SIZES:
        ds = FactorShapes("train", size=size, length=args.n)
        ds.render_uint8(np.arange(8))  # build the texture bank outside the timing
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for s in range(0, args.n, args.batch):
                ds.render_uint8(np.arange(s, min(s + args.batch, args.n)))
            best = min(best, time.perf_counter() - t0)
        results[size] = args.n / best
        print(f"FactorShapes {size}x{size}: {results[size]:,.0f} images/s (single process, best of {args.repeats})",
              flush=True)
    print(json.dumps({"images_per_second": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
