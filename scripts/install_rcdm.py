#!/usr/bin/env python
"""Ship a warm-started RCDM: replace the profile's exported model and extend its manifest entry.

    python scripts/install_rcdm.py runs/tiny/rcdm_ft8/export.safetensors \\
        --why "lr 5e-5 -> 1e-5, DINO slot 0.779 -> 0.80 on 400 images"

The export must come from `scripts/train.py --init-from <the shipped file> --export ...`,
which writes a manifest.json beside it. The shipped file's manifest entry keeps the whole
lineage: steps and training seconds are summed, and the run's command is appended to `runs`.
Replace a model only when it is measurably better (scripts/evaluate.py); the previous one
stays in the repository's history. Re-run scripts/evaluate.py afterwards: quality.json and
the grids beside the model describe the file they were measured on.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from rcdm_lib.artifacts import continue_artifact  # noqa: E402
from rcdm_lib.config import add_settings_args, repo_path, settings_from_args  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("export", help="the run's exported EMA model (.safetensors, manifest.json beside it)")
    p.add_argument("--why", required=True, help="what the run changed and what it measured (kept in the manifest)")
    add_settings_args(p)   # whose shipped model to replace: its rcdm.export
    p.add_argument("--target", help="the shipped file to replace (default: the profile's rcdm.export)")
    args = p.parse_args(argv)
    target = repo_path(args.target or settings_from_args(args)["rcdm"]["export"])
    try:
        entry = continue_artifact(target, args.export, why=args.why)
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"install_rcdm: {e}", file=sys.stderr)
        return 2
    print(f"installed {args.export} as {target}: {entry['steps']} steps, {entry['train_seconds']:.0f} s in all, "
          f"sha256 {entry['sha256'][:12]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
