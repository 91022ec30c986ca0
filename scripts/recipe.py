"""Run a recipe: the training commands that make a set of shipped files, as one command that resumes after a kill.

    python scripts/recipe.py scripts/recipes/tiny_dino_vit.yaml --jobs 2    # the tiny DINO ViT and its RCDM

Stages run as their `needs` allow, up to --jobs at once, the machine's cores shared among them (each gets
--threads). Kill it and run the same command again: finished stages are kept, the others continue from their
checkpoints. Progress goes to runs/recipes/<recipe>/<stage>.log; when all is done every file made gets the
recipe's command, seconds and machine in its manifest entry (rcdm_lib/recipe.py).
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))   # this checkout's rcdm_lib, whatever the environment has installed

from rcdm_lib.artifacts import command_line  # noqa: E402
from rcdm_lib.recipe import RecipeError, load_recipe, run_recipe  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="a recipe file (scripts/recipes/*.yaml)")
    p.add_argument("--jobs", type=int, default=1, help="stages at once, when their needs allow (default 1)")
    p.add_argument("--device", help="passed to every stage (default: each script's, from the settings)")
    p.add_argument("--cpus", type=int, help="cores to share among the stages (default: all of this machine's)")
    p.add_argument("--run-dir", help="state and logs (default runs/recipes/<recipe>)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    try:
        recipe = load_recipe(args.recipe, REPO_ROOT)
    except (RecipeError, FileNotFoundError) as e:
        raise SystemExit(str(e)) from None
    run_dir = Path(args.run_dir) if args.run_dir else REPO_ROOT / "runs" / "recipes" / recipe.name
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # a kill stops the stages cleanly, to resume
    print(f"recipe {recipe.name}: {len(recipe.stages)} stages, {args.jobs} at once; state and logs in {run_dir}",
          flush=True)
    try:
        stages = run_recipe(recipe, REPO_ROOT, run_dir, command=command_line("scripts/recipe.py",
                                                                            argv if argv is not None else sys.argv[1:]),
                            jobs=args.jobs, device=args.device, cpus=args.cpus, log=lambda s: print(s, flush=True))
    except RuntimeError as e:
        raise SystemExit(str(e)) from None
    total = sum(st.seconds for st in stages.values())
    print(f"recipe {recipe.name}: every stage done, {total:.0f} s of stage time; manifests record the recipe",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
