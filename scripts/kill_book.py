#!/usr/bin/env python
"""kill -9 `make book` at random moments, then let it finish: is the book the book of a run never interrupted?

    python scripts/kill_book.py --work /tmp/kills                 # smoke, five kills, seed 0
    python scripts/kill_book.py --work /tmp/kills --kills 3 --seed 7

Two copies of this checkout (its tracked and untracked, not ignored, files) are made under --work. In the first,
the book is built once, uninterrupted: what `make book PROFILE=<profile>` runs (scripts/run_notebooks.py --models
--build, OMP_NUM_THREADS=2). In the second, the same command is started and its whole process group (the runner,
its training scripts and notebook kernels) is killed with SIGKILL at a random moment, --kills times, each run
taking up what the last left; then it runs once more to the end. The two books must hold the same chapters, the
same results JSON and the same rendered pages, and nothing half written (.partial, .failed, .tmp files). Prints a
table of the kills (the moment, the stage the log had reached) and the comparison; exits 1 on a difference.
The slow test tests/test_harms.py::test_kill_9_five_times_then_the_book_of_a_run_never_interrupted runs it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))   # this checkout's rcdm_lib, whatever the environment has installed

from rcdm_lib.config import add_settings_args, settings_from_args  # noqa: E402

HALF_WRITTEN = ("*.partial.ipynb", "*.failed.ipynb", "*.tmp", ".*.tmp")


def copy_checkout(dest: Path) -> Path:
    """This checkout's tracked and untracked (not ignored) files, copied to `dest`."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO_ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def book_command(profile: str, overlay: str | None) -> list[str]:
    return [sys.executable, "scripts/run_notebooks.py", "--profile", profile, "--models", "--build",
            *(["--config", overlay] if overlay else [])]


def start(repo: Path, command: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)   # the copy's own rcdm_lib, as a user's checkout would import it
    with open(log, "ab") as f:
        return subprocess.Popen(command, cwd=repo, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)   # its own process group: the kill takes every child


def stage_at(log: Path) -> str:
    """The last stage or chapter line the log shows."""
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    marks = [ln.strip() for ln in lines if ln.startswith(("[book", "  ", "stage times"))]
    return (marks or ["(nothing yet)"])[-1][:90]


def run_to_end(repo: Path, command: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    proc = start(repo, command, log)
    if proc.wait() != 0:
        raise SystemExit(f"the book in {repo} failed (exit {proc.returncode}); see {log}:\n"
                         + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    return time.perf_counter() - t0


def kill_loop(repo: Path, command: list[str], kills: int, expected_s: float, rng: random.Random,
              log: Path) -> list[dict]:
    """Start the book and SIGKILL its process group at a random moment, until `kills` kills landed. A moment is
    drawn from [2 s, an estimate of the time the book still needs]: `expected_s` less half the moments already
    spent (a kill loses the chapter it was in), or, after a run that ended by itself, that run's time (a rebuild:
    the kills then land in the checks, the copies from the cache and the site's build)."""
    rows, spent, tries = [], 0.0, 0
    while sum(r["killed"] for r in rows) < kills and tries < 4 * kills:
        tries += 1
        moment = rng.uniform(2.0, max(4.0, expected_s - 0.5 * spent))
        t0 = time.perf_counter()
        proc = start(repo, command, log)
        try:
            proc.wait(timeout=moment)
            took = time.perf_counter() - t0
            rows.append({"moment_s": round(moment, 1), "killed": False,
                         "stage": f"ended by itself after {took:.0f} s (exit {proc.returncode})"})
            expected_s, spent = took, 0.0
            continue
        except subprocess.TimeoutExpired:
            pass
        stage = stage_at(log)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        spent += moment
        rows.append({"moment_s": round(moment, 1), "killed": True, "stage": stage})
    return rows


def results(book: Path) -> dict[str, object]:
    return {p.name: json.loads(p.read_text()) for p in sorted((book / "_results").glob("*.json"))}


def compare(reference: Path, killed: Path) -> list[str]:
    """What differs between two built books, as sentences (empty: the same book)."""
    a, b = reference / "book", killed / "book"
    out = []
    chapters = [sorted(p.name for p in d.glob("*.ipynb")) for d in (a, b)]
    if chapters[0] != chapters[1]:
        out.append(f"chapters differ: {chapters[0]} vs {chapters[1]}")
    ra, rb = results(a), results(b)
    if sorted(ra) != sorted(rb):
        out.append(f"results files differ: {sorted(ra)} vs {sorted(rb)}")
    out += [f"_results/{name} differs" for name in sorted(set(ra) & set(rb)) if ra[name] != rb[name]]
    pages = [sorted(p.relative_to(d / "_build" / "html").as_posix() for p in (d / "_build" / "html").glob("*.html"))
             for d in (a, b)]
    if not pages[0] or pages[0] != pages[1]:
        out.append(f"rendered pages differ: {len(pages[0])} vs {len(pages[1])}")
    left = [str(p.relative_to(killed)) for pat in HALF_WRITTEN for p in killed.rglob(pat) if ".venv" not in p.parts]
    if left:
        out.append(f"half-written files left: {left[:5]}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="an empty folder for the two copies (several GB free not needed)")
    add_settings_args(p, default_profile="smoke")
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    args = p.parse_args(argv)
    if args.kills < 1:
        raise SystemExit(f"--kills is {args.kills}; expected at least 1")
    settings = settings_from_args(args)   # checked here, before two copies are made
    command = book_command(args.profile, settings.get("overlay"))
    work = Path(args.work).resolve()
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"--work {work} is not empty; give an empty or new folder")
    reference, killed = copy_checkout(work / "reference"), copy_checkout(work / "killed")
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"profile {args.profile}, {args.kills} kills, seed {args.seed}", flush=True)
    ref_s = run_to_end(reference, command, work / "reference.log")
    print(f"uninterrupted book: {ref_s:.0f} s", flush=True)
    rows = kill_loop(killed, command, args.kills, ref_s, random.Random(args.seed), work / "killed.log")
    final_s = run_to_end(killed, command, work / "killed.log")
    print("\n| run | kill at (s) | killed | stage the log had reached |\n| --- | --- | --- | --- |")
    for i, r in enumerate(rows, 1):
        print(f"| {i} | {r['moment_s']} | {'yes' if r['killed'] else 'no'} | {r['stage']} |")
    print(f"| {len(rows) + 1} | - | no | ran to the end in {final_s:.0f} s |")
    problems = compare(reference, killed)
    landed = sum(r["killed"] for r in rows)
    if landed < args.kills:
        problems.append(f"only {landed} of {args.kills} kills landed before the book ended by itself")
    print(f"\n{landed} kills; books compared: " + ("the same chapters, results JSON and pages" if not problems
                                                   else "DIFFERENT:\n  - " + "\n  - ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
