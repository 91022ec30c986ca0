#!/usr/bin/env python
"""Execute the book's notebooks for a profile (and, with --models/--build, the whole `make book`).

    python scripts/run_notebooks.py --profile smoke                 # notebooks/*.py -> book/*.ipynb
    python scripts/run_notebooks.py --profile tiny --only 03        # one chapter
    python scripts/run_notebooks.py --profile tiny --models --build # what `make book` runs
    python scripts/run_notebooks.py --profile imagenet128 --config my_paths.yaml --build

Parameters come from `_config.yml` (profiles.<P>.notebooks.<name>), with your own settings
(`--config FILE`, a YAML file with a profile's keys) deep-merged over them; both are checked
before anything runs. Papermill injects each chapter's parameters and the merged settings file
after its `parameters` cell. Executed notebooks are cached (key: notebook source, parameters,
merged settings, input model hashes, rcdm_lib source), so a rebuild with nothing changed
executes nothing. Exits non-zero with a message naming what to fix.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from rcdm_lib import pipeline  # noqa: E402
from rcdm_lib.config import add_settings_args, load_settings  # noqa: E402
from rcdm_lib.settings import SettingsError  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(p)
    p.add_argument("--only", help="one notebook, by name or number (e.g. 03 or 03_interpolation)")
    p.add_argument("--book-dir", default=str(pipeline.BOOK_DIR), help="where executed notebooks go (default: book/)")
    p.add_argument("--force", action="store_true", help="execute even when a cached result exists")
    p.add_argument("--models", action="store_true", help="first reuse (hash-checked) or train the profile's models")
    p.add_argument("--from-scratch", action="store_true", help="with --models: retrain the models")
    p.add_argument("--models-budget", type=float, metavar="SECONDS",
                   help="with --models: train them within this many seconds; the RCDM, trained last, gets what is "
                        "left (default: the profile's models_budget_s, 7200 for tiny; 0: the full recipe)")
    p.add_argument("--build", action="store_true", help="then vendor the JavaScript and run `jupyter-book build`")
    args = p.parse_args(argv)

    try:
        profile = load_settings(args.profile, args.config)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stages = 1 + args.models + 2 * args.build
    stage = 0
    times = {}

    def start(what):
        nonlocal stage
        stage += 1
        print(f"[book {stage}/{stages}] {what}", flush=True)
        return time.perf_counter()

    try:
        if args.models:
            t0 = start(f"models ({args.profile})")
            print("  " + pipeline.ensure_models(profile, from_scratch=args.from_scratch, budget_s=args.models_budget))
            times["models"] = time.perf_counter() - t0
        t0 = start(f"notebooks ({args.profile})")
        runs = pipeline.run_notebooks(profile, only=args.only, book_dir=args.book_dir, force=args.force)
        times["notebooks"] = time.perf_counter() - t0
        print(pipeline.time_table(runs))
        if args.build:
            t0 = start("JavaScript for widgets and MathJax")
            pipeline.vendor_js()
            times["javascript"] = time.perf_counter() - t0
            t0 = start("jupyter-book build (execution off)")
            index = pipeline.build_book(args.book_dir, title=(profile.get("book") or {}).get("title"))
            times["build"] = time.perf_counter() - t0
            print("stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
            print(f"the book: {index}")
    except (pipeline.NotebookError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as e:
        print(f"error: {' '.join(map(str, e.cmd))} exited with {e.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
