"""The recipe runner (rcdm_lib/recipe.py): stages in the order their needs allow, cores shared, the state kept
over a failure or a kill so that the same command continues, and the recipe written into each file's manifest."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rcdm_lib.recipe import RecipeError, load_recipe, run_recipe

# A stand-in for a training script: writes OUT with a manifest entry, after checking that every --reads file
# exists; counts its runs in OUT.runs; fails while --fail-while exists; sleeps --sleep seconds first.
STAGE = textwrap.dedent('''
    import argparse, os, time
    from pathlib import Path
    from rcdm_lib.artifacts import record_artifact
    p = argparse.ArgumentParser()
    p.add_argument("out"); p.add_argument("--reads", action="append", default=[])
    p.add_argument("--fail-while"); p.add_argument("--sleep", type=float, default=0)
    p.add_argument("--threads", type=int, required=True)
    a = p.parse_args()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = out.with_suffix(".runs")
    runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
    Path(str(out) + ".threads").write_text(str(a.threads))
    time.sleep(a.sleep)
    if a.fail_while and Path(a.fail_while).exists():
        raise SystemExit(3)
    for r in a.reads:
        assert Path(r).is_file(), r
    out.write_text(f"made by {os.getpid()}")
    record_artifact(out, command="python scripts/stage.py", device="cpu", train_seconds=1.0, steps=1)
''')


def _root(tmp_path: Path, recipe: str) -> tuple[Path, Path]:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "stage.py").write_text(STAGE)
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(recipe))
    return tmp_path, path


THREE = """
    about: two stages side by side, a third on the first's file
    stages:
      - {name: a, run: [scripts/stage.py, out/a.bin, --sleep, "0.5"], makes: [out/a.bin]}
      - {name: c, run: [scripts/stage.py, out/c.bin, --sleep, "0.5"], makes: [out/c.bin]}
      - {name: b, needs: [a], run: [scripts/stage.py, out/b.bin, --reads, out/a.bin, --fail-while, FAIL],
         makes: [out/b.bin]}
"""


def _runs(root: Path, name: str) -> int:
    return len((root / "out" / f"{name}.runs").read_text())


def test_stages_run_as_their_needs_allow_and_each_file_records_the_recipe(tmp_path):
    # b needs both here, so that it starts alone whatever the machine's load
    root, path = _root(tmp_path, THREE.replace("needs: [a]", "needs: [a, c]"))
    recipe = load_recipe(path, root)
    stages = run_recipe(recipe, root, root / "run", command="python scripts/recipe.py recipe.yaml --jobs 2",
                        jobs=2, cpus=2, log=lambda s: None, poll_s=0.05)
    assert all(st.done for st in stages.values())
    # a and c shared the two cores; b, alone after them, had both
    assert {n: (root / "out" / f"{n}.bin.threads").read_text() for n in "acb"} == {"a": "1", "c": "1", "b": "2"}
    for name in "acb":
        entry = json.loads((root / "out" / "manifest.json").read_text())[name]
        rec = entry["recipe"]
        assert rec["command"] == "python scripts/recipe.py recipe.yaml --jobs 2" and rec["stage"] == name
        assert rec["stage_command"] == recipe.stage(name).command and rec["attempts"] == 1
        assert rec["seconds"] >= (0.5 if name != "b" else 0) and rec["machine"]["cpu_count"] == os.cpu_count()


def test_a_failed_stage_stops_the_recipe_and_the_same_command_continues_it(tmp_path):
    root, path = _root(tmp_path, THREE)
    (root / "FAIL").write_text("")
    recipe = load_recipe(path, root)
    with pytest.raises(RuntimeError, match=r"stage b exited with 3; see .*b\.log"):
        run_recipe(recipe, root, root / "run", command="cmd", jobs=1, log=lambda s: None, poll_s=0.05)
    assert not (root / "out" / "manifest.json").is_file() or "recipe" not in json.loads(
        (root / "out" / "manifest.json").read_text()).get("a", {})
    (root / "FAIL").unlink()
    stages = run_recipe(recipe, root, root / "run", command="cmd", jobs=2, log=lambda s: None, poll_s=0.05)
    assert (_runs(root, "a"), _runs(root, "c"), _runs(root, "b")) == (1, 1, 2)   # only b ran again
    assert stages["b"].attempts == 2 and stages["a"].attempts == 1


def test_a_stage_runs_again_when_its_file_or_its_command_changed(tmp_path):
    root, path = _root(tmp_path, THREE)
    run_recipe(load_recipe(path, root), root, root / "run", command="cmd", log=lambda s: None, poll_s=0.05)
    (root / "out" / "c.bin").write_text("edited by hand")
    path.write_text(path.read_text().replace('out/a.bin, --sleep, "0.5"', 'out/a.bin, --sleep, "0.1"'))
    stages = run_recipe(load_recipe(path, root), root, root / "run", command="cmd", log=lambda s: None,
                        poll_s=0.05)
    assert (_runs(root, "a"), _runs(root, "c"), _runs(root, "b")) == (2, 2, 1)
    assert stages["a"].attempts == 1   # another command: its state starts over


def test_a_killed_recipe_stops_its_stages_keeps_their_seconds_and_continues(tmp_path):
    root, path = _root(tmp_path, """
        stages:
          - {name: slow, run: [scripts/stage.py, out/slow.bin, --sleep, "60"], makes: [out/slow.bin]}
    """)
    code = (f"import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
            f"from rcdm_lib.recipe import load_recipe, run_recipe\n"
            f"run_recipe(load_recipe({str(path)!r}, {str(root)!r}), {str(root)!r}, {str(root / 'run')!r}, "
            f"command='cmd', poll_s=0.05, save_every_s=0.2)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 30
    while not (root / "out" / "slow.runs").is_file() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 143
    state = json.loads((root / "run" / "state.json").read_text())["slow"]
    assert state["seconds"] >= 1.0 and not state["done"]
    assert (root / "run" / "slow.log").read_text().count("# attempt") == 1
    assert not (root / "out" / "slow.bin").exists()   # the stage was stopped, not left to finish on its own
    path.write_text(path.read_text().replace('"60"', '"0"'))   # (a new command: its seconds start over)
    stages = run_recipe(load_recipe(path, root), root, root / "run", command="cmd", log=lambda s: None,
                        poll_s=0.05)
    assert stages["slow"].done and (root / "out" / "slow.bin").is_file()


def test_a_recipe_file_with_problems_is_refused_naming_each(tmp_path):
    root, path = _root(tmp_path, """
        stages:
          - {name: a, run: [scripts/stage.py, out/a.bin], makes: [out/a.bin], need: [b]}
          - {name: b, run: [scripts/missing.py], makes: [out/a.bin]}
          - {name: c, run: [rm, -rf, /], needs: [d], makes: [out/c.bin]}
        extra: 1
    """)
    with pytest.raises(RecipeError) as e:
        load_recipe(path, root)
    msg = str(e.value)
    for part in ("unknown key 'extra'", "stage 'a': unknown key 'need'", "stage 'b': run must start with a script",
                 "stage 'b': makes out/a.bin, which stage 'a' makes too", "stage 'c': run must start with a script",
                 "stage 'c': needs 'd', which is not an earlier stage"):
        assert part in msg, part
    with pytest.raises(FileNotFoundError, match="recipe file .* does not exist"):
        load_recipe(tmp_path / "nope.yaml", root)


def test_the_shipped_recipe_is_valid_and_its_evaluation_reads_the_models_its_stages_make():
    root = Path(__file__).resolve().parent.parent
    recipe = load_recipe(root / "scripts" / "recipes" / "tiny_dino_vit.yaml", root)
    made = {(root / f).resolve() for s in recipe.stages for f in s.makes}
    overlay = root / "scripts" / "recipes" / "tiny_dino_vit_beside.yaml"
    beside = __import__("yaml").safe_load(overlay.read_text())["rcdm"]["beside"]
    assert {(overlay.parent / b["checkpoint"]).resolve() for b in beside.values()} <= made
    assert {b["encoder"] for b in beside.values()} == {"dino", "dino_vit"}
    from rcdm_lib.config import load_settings   # the tiny profile shows the same models beside its slot model

    tiny = load_settings("tiny", check_files=False)["rcdm"]["beside"]
    assert {n: (b["encoder"], (root / b["checkpoint"]).resolve()) for n, b in tiny.items()} == \
        {n: (b["encoder"], (overlay.parent / b["checkpoint"]).resolve()) for n, b in beside.items()}
    evaluate = recipe.stage("shape_agreement")
    assert set(evaluate.needs) == {s.name for s in recipe.stages if any(f.startswith("artifacts/tiny/rcdm/rcdm_") for f in s.makes)}
    assert str(overlay.relative_to(root)) in evaluate.run and set(beside) <= set(evaluate.run)
