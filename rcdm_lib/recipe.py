"""A recipe: the training commands that make a set of shipped files, run as one command that resumes.

    python scripts/recipe.py scripts/recipes/tiny_dino_vit.yaml [--jobs 2]

A recipe file (YAML, read with the safe loader and checked before anything runs) lists stages:

    stages:
      - name: dino_vit_encoder
        run: [scripts/train_encoder.py, --profile, tiny, --method, dino_vit, --resume, --export, artifacts/tiny/encoders]
        makes: [artifacts/tiny/encoders/dino_vit.safetensors]
      - name: rcdm_dino_vit
        needs: [dino_vit_encoder]
        run: [scripts/train.py, ...]
        makes: [artifacts/tiny/rcdm/rcdm_dino_vit.safetensors]

Each stage is a script of this repository run with this Python; the runner adds `--threads N` (the machine's
cores shared among the stages that run at once) and `--device` when given. Stages whose `needs` are done run
side by side, up to `jobs` at a time. The state (`state.json` in the recipe's run folder, written atomically)
says which stages finished with which command and how many seconds each has taken over all its attempts; a
stage that finished with the same command and whose files are still the ones it made is not run again, and one
cut short runs again with the same command (the training scripts' `--resume` continues from their checkpoints).
When every stage is done, each model file a stage makes gets `recipe` in its manifest entry: the recipe's
command, the stage, its command, its seconds and the machine (tables and figures have no manifest entry).
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rcdm_lib.artifacts import file_sha256, hardware, update_manifest
from rcdm_lib.files import atomic_write_text


class RecipeError(ValueError):
    """A recipe file that cannot run: each sentence names the stage and the key."""


@dataclass(frozen=True)
class Stage:
    name: str
    run: tuple[str, ...]                 # scripts/<name>.py and its arguments
    makes: tuple[str, ...]               # the files it writes, relative to the repository
    needs: tuple[str, ...] = ()          # stages whose files it reads

    @property
    def command(self) -> str:
        return " ".join(shlex.quote(a) for a in ("python", *self.run))


@dataclass(frozen=True)
class Recipe:
    path: Path
    stages: tuple[Stage, ...]
    about: str = ""

    @property
    def name(self) -> str:
        return self.path.stem

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


_STAGE_KEYS = {"name", "run", "makes", "needs"}


def load_recipe(path, root) -> Recipe:
    """The recipe of a YAML file, checked: known keys, scripts that exist under `root`, `needs` that name earlier
    stages, no file made by two stages (RecipeError listing every problem)."""
    import yaml

    from rcdm_lib.config import SAFE_LOADER

    path, root = Path(path), Path(root)
    if not path.is_file():
        raise FileNotFoundError(f"recipe file {path} does not exist (the recipes are in scripts/recipes/)")
    raw = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    if not isinstance(raw, dict) or not isinstance(raw.get("stages"), list) or not raw["stages"]:
        raise RecipeError(f"{path}: expected a mapping with a non-empty list under 'stages'")
    problems = [f"{path}: unknown key {k!r} (known: about, stages)" for k in raw if k not in ("about", "stages")]
    stages, made = [], {}
    for i, s in enumerate(raw["stages"]):
        where = f"{path}: stage {i + 1}"
        if not isinstance(s, dict):
            problems.append(f"{where}: expected a mapping with name, run, makes (and needs), got {s!r}")
            continue
        where = f"{path}: stage {s.get('name', i + 1)!r}"
        problems += [f"{where}: unknown key {k!r} (known: {', '.join(sorted(_STAGE_KEYS))})" for k in s
                     if k not in _STAGE_KEYS]
        lists = {k: s.get(k) or [] for k in ("run", "makes", "needs")}
        bad = [k for k, v in lists.items() if not isinstance(v, list) or not all(isinstance(a, str) for a in v)]
        if not isinstance(s.get("name"), str) or bad:
            problems.append(f"{where}: 'name' must be a string and {', '.join(bad) or 'run, makes, needs'} lists "
                            "of strings")
            continue
        if not lists["run"] or not lists["run"][0].startswith("scripts/") or not (root / lists["run"][0]).is_file():
            problems.append(f"{where}: run must start with a script of this repository (scripts/NAME.py), got "
                            f"{lists['run'][:1]}")
        if not lists["makes"]:
            problems.append(f"{where}: makes lists no file")
        earlier = {st.name for st in stages}
        problems += [f"{where}: needs {n!r}, which is not an earlier stage (earlier: {sorted(earlier)})"
                     for n in lists["needs"] if n not in earlier]
        if s["name"] in earlier:
            problems.append(f"{where}: a second stage of this name")
        for f in lists["makes"]:
            if f in made:
                problems.append(f"{where}: makes {f}, which stage {made[f]!r} makes too")
            made[f] = s["name"]
        stages.append(Stage(s["name"], tuple(lists["run"]), tuple(lists["makes"]), tuple(lists["needs"])))
    if problems:
        raise RecipeError("\n".join(problems))
    return Recipe(path, tuple(stages), str(raw.get("about") or ""))


@dataclass
class StageState:
    command: str
    seconds: float = 0.0       # wall seconds over every attempt
    attempts: int = 0
    threads: list[int] = field(default_factory=list)
    done: bool = False
    sha256: dict[str, str] = field(default_factory=dict)   # of the files it made, when done


class RecipeState:
    """state.json of a recipe's run folder: what each stage has done (see the module docstring)."""

    def __init__(self, path):
        self.path = Path(path)
        raw = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.stages = {k: StageState(**v) for k, v in raw.items()}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({k: vars(v) for k, v in self.stages.items()}, indent=2) + "\n")

    def of(self, stage: Stage) -> StageState:
        """The stage's state; a state kept for another command starts over (its seconds are of other work)."""
        st = self.stages.get(stage.name)
        if st is None or st.command != stage.command:
            st = self.stages[stage.name] = StageState(stage.command)
        return st


def stage_done(stage: Stage, state: RecipeState, root) -> bool:
    """Whether the stage finished with its command and its files are still the ones it made."""
    st = state.of(stage)
    if not st.done:
        return False
    for f in stage.makes:
        p = Path(root) / f
        if not p.is_file() or file_sha256(p) != st.sha256.get(f):
            return False
    return True


def _threads(n_at_once: int, cpus: int | None) -> int:
    return max(1, (cpus or os.cpu_count() or 1) // max(1, n_at_once))


def run_recipe(recipe: Recipe, root, run_dir, *, command: str, jobs: int = 1, device: str | None = None,
               cpus: int | None = None, log=print, poll_s: float = 1.0, save_every_s: float = 30.0) -> dict:
    """Run the stages not yet done (see the module docstring); return the state's stages. A stage that fails
    stops the recipe (the others running are stopped too, to resume later) with a RuntimeError naming its log."""
    root, run_dir = Path(root), Path(run_dir)
    state = RecipeState(run_dir / "state.json")
    todo = [s for s in recipe.stages if not stage_done(s, state, root)]
    for s in recipe.stages:
        if s not in todo:
            log(f"{s.name}: done ({state.of(s).seconds:.0f} s), its files unchanged")
    running: dict[str, tuple[subprocess.Popen, float, float]] = {}   # name -> (process, start, seconds before)
    finished = {s.name for s in recipe.stages if s not in todo}
    last_save = time.time()

    def ready() -> list[Stage]:
        return [s for s in todo if s.name not in running and all(n in finished for n in s.needs)]

    def stop_all(why: str) -> None:
        for name, (proc, t0, before) in running.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            state.stages[name].seconds = before + time.time() - t0
            log(f"{name}: stopped ({why}); the next run of the recipe continues it")
        state.save()

    try:
        while todo or running:
            for s in ready()[:max(0, jobs - len(running))]:
                n = _threads(min(jobs, len(running) + len(ready())), cpus)
                argv = [sys.executable, str(root / s.run[0]), *s.run[1:], "--threads", str(n),
                        *(["--device", device] if device else [])]
                st = state.of(s)
                st.attempts, st.threads = st.attempts + 1, [*st.threads, n]
                stage_log = run_dir / f"{s.name}.log"
                stage_log.parent.mkdir(parents=True, exist_ok=True)
                with open(stage_log, "a") as out:
                    out.write(f"\n# attempt {st.attempts}: {shlex.join(argv)}\n")
                    out.flush()
                    proc = subprocess.Popen(argv, cwd=root, stdout=out, stderr=subprocess.STDOUT)
                running[s.name] = (proc, time.time(), st.seconds)
                log(f"{s.name}: started with {n} thread(s), attempt {st.attempts} (log {stage_log})")
            state.save()
            time.sleep(poll_s)
            for name in list(running):
                proc, t0, before = running[name]
                st = state.stages[name]
                st.seconds = before + time.time() - t0
                if proc.poll() is None:
                    continue
                del running[name]
                stage = recipe.stage(name)
                if proc.returncode != 0:
                    state.save()
                    stop_all(f"{name} failed")
                    raise RuntimeError(f"stage {name} exited with {proc.returncode}; see {run_dir / f'{name}.log'}")
                missing = [f for f in stage.makes if not (root / f).is_file()]
                if missing:
                    state.save()
                    stop_all(f"{name} did not write its files")
                    raise RuntimeError(f"stage {name} finished but did not write {', '.join(missing)}; see "
                                       f"{run_dir / f'{name}.log'}")
                st.done, st.sha256 = True, {f: file_sha256(root / f) for f in stage.makes}
                finished.add(name)
                todo.remove(stage)
                log(f"{name}: done in {st.seconds:.0f} s over {st.attempts} attempt(s)")
                state.save()
            if time.time() - last_save > save_every_s:
                state.save()
                last_save = time.time()
    except BaseException:   # a kill of the runner (SIGTERM is raised as SystemExit by the script) or Ctrl-C
        if running:
            stop_all("the recipe was interrupted")
        raise
    record_recipe(recipe, state, root, command)
    return state.stages


def record_recipe(recipe: Recipe, state: RecipeState, root, command: str) -> None:
    """Add `recipe` (command, stage, stage command, seconds, machine) to the manifest entry of every file a stage
    made (the manifest.json beside it, entry named after the file's stem)."""
    machine = hardware()
    for s in recipe.stages:
        st = state.of(s)
        for f in s.makes:
            path = Path(root) / f
            manifest = path.parent / "manifest.json"
            entries = json.loads(manifest.read_text()) if manifest.is_file() else {}
            entry = entries.get(path.stem)
            if entry is None and path.suffix != ".safetensors":
                continue   # a table or a figure (probes, evaluations): its stage's seconds are in state.json
            if entry is None or entry.get("sha256") != st.sha256.get(f):
                raise RuntimeError(f"{manifest} has no entry {path.stem!r} for the {f} stage {s.name} made")
            entry["recipe"] = {"command": command, "file": str(recipe.path), "stage": s.name,
                               "stage_command": s.command, "seconds": round(st.seconds, 1),
                               "attempts": st.attempts, "threads": st.threads,
                               "machine": {k: v for k, v in machine.items() if k != "torch_threads"}}
            update_manifest(manifest, path.stem, entry)
