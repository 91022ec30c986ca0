"""The harms of issue 34, each as a test that failed on the code of 36a9da3 (benchmarks/harms.md says how each
failed there): nothing half done is published or trusted, no archive writes outside its folder, a zero-step run
replaces nothing, real-image training draws its flips from the run's generators, and figures do not hide NaN or
stretch 16-bit images."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rcdm_lib import pipeline

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = '''# %% [markdown]
# # 99. A probe chapter

# %% tags=["parameters"]
profile = "smoke"
settings = None
results_dir = "_results"

# %%
import pathlib, time
{body}
'''


def chapters(tmp_path, body: str) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir(exist_ok=True)
    (folder / "99_probe.py").write_text(CHAPTER.format(body=body))
    return folder


# ---------------------------------------------------------------- 3: half-run chapters published

def test_a_chapter_that_fails_leaves_nothing_in_the_book(tmp_path):
    src = chapters(tmp_path, 'print("half")\nraise RuntimeError("a cell fails")')
    book = tmp_path / "book"
    with pytest.raises(pipeline.NotebookError, match="a cell fails"):
        pipeline.run_notebooks("smoke", book_dir=book, cache_dir=tmp_path / "cache", notebook_dir=src,
                               log=lambda s: None)
    assert not (book / "99_probe.ipynb").exists(), "the partly executed chapter was left in the book"


@pytest.mark.slow
def test_a_chapter_killed_mid_cell_leaves_nothing_in_the_book(tmp_path):
    marker = tmp_path / "in_the_cell"
    src = chapters(tmp_path, f'pathlib.Path({str(marker)!r}).write_text("x")\ntime.sleep(120)')
    book = tmp_path / "book"
    code = (f"from rcdm_lib import pipeline; pipeline.run_notebooks('smoke', book_dir={str(book)!r}, "
            f"cache_dir={str(tmp_path / 'cache')!r}, notebook_dir={str(src)!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert marker.exists(), "the chapter never reached its cell"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)   # the runner and its kernel
        proc.wait()
    assert not (book / "99_probe.ipynb").exists(), "the killed chapter's partial notebook is in the book"


# ---------------------------------------------------------------- 4: a poisoned cache trusted

def test_a_cached_notebook_cut_short_is_executed_again(tmp_path):
    src = chapters(tmp_path, 'print("done")')
    book, cache = tmp_path / "book", tmp_path / "cache"
    pipeline.run_notebooks("smoke", book_dir=book, cache_dir=cache, notebook_dir=src, log=lambda s: None)
    (cached,) = cache.glob("99_probe-*.ipynb")
    data = cached.read_bytes()
    cached.write_bytes(data[: len(data) // 2])            # a kill during the copy
    (run,) = pipeline.run_notebooks("smoke", book_dir=book, cache_dir=cache, notebook_dir=src, log=lambda s: None)
    assert not run.cached, "a truncated cache entry was reported cached"
    nb = json.loads((book / "99_probe.ipynb").read_text())
    assert any("done" in "".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


# ---------------------------------------------------------------- 8: archive extraction escapes its folder

def _tgz(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_a_member_named_dot_dot_does_not_leave_the_vendor_folder(tmp_path, monkeypatch):
    dest = tmp_path / "a" / "b" / "c" / "vendor"
    dist = dest / "extra" / "@jupyter-widgets" / "html-manager" / "dist"     # where package/dist/ is unpacked
    escape = "package/dist/" + "../" * len(dist.relative_to(tmp_path).parts) + "escaped.txt"   # into tmp_path

    def fake_npm(cmd, cwd, **kw):            # `npm pack` of the three packages, one of them malicious
        _tgz(Path(cwd) / "requirejs-2.3.7.tgz", {"package/require.js": b"//"})
        _tgz(Path(cwd) / "jupyter-widgets-html-manager-1.0.6.tgz",
             {"package/dist/embed-amd.js": b"//", escape: b"outside"})
        _tgz(Path(cwd) / "mathjax-3.2.2.tgz", {"package/es5/tex-chtml.js": b"//"})
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(pipeline.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(pipeline.subprocess, "run", fake_npm)
    try:
        pipeline.vendor_js(dest, log=lambda s: None)
    except Exception as e:   # refusing the archive is fine; writing outside is not
        assert "escaped.txt" in str(e) or "outside" in str(e), e
    assert not (tmp_path / "escaped.txt").exists(), f"an archive member was written outside {dest}"


# ---------------------------------------------------------------- 2: a zero-step run replaces the shipped model

@pytest.mark.parametrize("steps", ["0", "-5"])
def test_a_zero_or_negative_step_run_replaces_nothing_and_says_so(smoke_models, tmp_path, steps):
    shipped = tmp_path / "rcdm_slots.safetensors"
    shipped.write_bytes(b"the shipped model")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--profile", "smoke", "--steps", steps,
                           "--out", str(tmp_path / "run"), "--export", str(shipped), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True)
    assert shipped.read_bytes() == b"the shipped model", "a run of no training replaced the export"
    assert proc.returncode != 0, f"--steps {steps} exited 0:\n{proc.stdout[-500:]}"
    assert "steps" in (proc.stderr + proc.stdout)[-2000:]


def test_the_shipped_file_is_replaced_only_on_an_explicit_export(smoke_models, tmp_path):
    shipped = tmp_path / "shipped" / "rcdm_slots.safetensors"
    shipped.parent.mkdir()
    shipped.write_bytes(b"the shipped model")
    overlay = tmp_path / "mine.yaml"
    overlay.write_text(f"rcdm:\n  export: {shipped}\n")

    def train(*extra):
        return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--profile", "smoke", "--config",
                               str(overlay), "--steps", "2", "--out", str(tmp_path / "run"), "--no-progress",
                               "--threads", "1", *extra], cwd=ROOT, capture_output=True, text=True)

    proc = train()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shipped.read_bytes() == b"the shipped model", "a run without --export replaced rcdm.export"
    assert "not exported" in proc.stdout and "--export" in proc.stdout
    proc = train("--resume", "--export")   # nothing left to train: the bare option writes rcdm.export
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shipped.read_bytes()[:8] != b"the ship" and "exported the EMA model to" in proc.stdout


def test_an_export_that_cannot_be_written_stops_the_run_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for target, said in ((blocker / "sub" / "rcdm.safetensors", "is a file"), (tmp_path, "is a folder")):
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--profile", "smoke",
                               "--out", str(tmp_path / "run"), "--export", str(target), "--no-progress"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and said in proc.stderr and str(target if said == "is a folder" else blocker) \
            in proc.stderr, proc.stderr[-1000:]
        assert "run folder" not in proc.stdout, "the data was made and the model built before the check"


# ---------------------------------------------------------------- 6: flips from the global `random`

def test_real_image_batches_depend_only_on_the_runs_generators(tmp_path):
    import random

    sys.path.insert(0, str(ROOT / "tests"))
    from official_files import write_image_folder

    from rcdm_lib.data import ImageFolder, PreprocessPair
    from rcdm_lib.training.data import FolderPairSource

    root = write_image_folder(tmp_path / "imagenet", per_class=4)
    src = FolderPairSource(ImageFolder(root / "train", transform=PreprocessPair(16, 16, random_flip=True)),
                           lambda x: x.mean((2, 3)), 3, threads=4)

    def batch(global_seed: int):
        random.seed(global_seed)
        gens = [torch.Generator().manual_seed(100 + i) for i in range(8)]
        return src.batch(torch.arange(8), gens)[0]

    first = batch(0)
    assert all(torch.equal(first, batch(s)) for s in (1, 2, 3, 4, 5)), "the flips follow Python's global random"
    # and the flips happen: another set of generators flips other images
    gens = [torch.Generator().manual_seed(7 + i) for i in range(8)]
    assert not torch.equal(first, src.batch(torch.arange(8), gens)[0])


# ---------------------------------------------------------------- 11: NaN shown black, 16-bit stretched

def test_a_figure_of_nan_images_is_refused_with_a_sentence():
    from rcdm_lib.viz import image_grid

    x = torch.zeros(2, 3, 4, 4)
    x[1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        image_grid(x)


def test_a_16_bit_image_keeps_its_brightness():
    from rcdm_lib.data import to_rgb

    dark = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 16)      # 0 .. 1008 of 65535: a nearly black image
    buf = io.BytesIO()
    Image.fromarray(dark).save(buf, "PNG")                          # a 16-bit grayscale PNG, as a user has them
    img = Image.open(io.BytesIO(buf.getvalue()))
    assert img.mode.startswith("I")
    rgb = np.asarray(to_rgb(img))
    assert rgb.max() <= 4, f"a 16-bit image reaching 1008/65535 was shown with a maximum of {rgb.max()}/255"
    assert rgb[..., 0].tolist() == rgb[..., 2].tolist()


# ---------------------------------------------------------------- 5: two runs on one folder

def _trainers():
    from rcdm_lib.icgan.training import train_icgan
    from rcdm_lib.superres.train import train_superres
    from rcdm_lib.training.config import DiffusionConfig, TrainConfig
    from rcdm_lib.training.loop import train_rcdm

    return {"rcdm": lambda d: train_rcdm(None, DiffusionConfig(), TrainConfig(steps=1), None, d),
            "superres": lambda d: train_superres(None, DiffusionConfig(), TrainConfig(steps=1), None, d),
            "icgan": lambda d: train_icgan(None, None, None, None, run_dir=d)}


@pytest.mark.parametrize("trainer", ["rcdm", "superres", "icgan"])
def test_a_second_run_on_a_folder_in_use_stops_before_touching_it(tmp_path, trainer):
    from rcdm_lib.files import RunInUse, RunLock

    train = _trainers()[trainer]
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_dir.mkdir()
        (run_dir / ".lock").write_text(str(holder.pid))         # a live run holds the folder
        (run_dir / "metrics.jsonl").write_text('{"step": 5}\n')
        with pytest.raises(RunInUse, match=f"in use by PID {holder.pid}"):
            train(run_dir)
        assert (run_dir / "metrics.jsonl").read_text() == '{"step": 5}\n'
    finally:
        holder.kill()
        holder.wait()
    with RunLock(run_dir) as lock:                                # the holder is gone: its lock is taken over
        assert lock.held and (run_dir / ".lock").read_text() == str(os.getpid())
    assert not (run_dir / ".lock").exists()


# ---------------------------------------------------------------- 9: a script imports another checkout's library

def test_every_script_imports_the_library_of_its_own_checkout(tmp_path):
    """Another checkout's rcdm_lib first on the path (what one virtualenv's editable install of a second clone
    gives): every script must still import the rcdm_lib beside it."""
    other = tmp_path / "other_checkout" / "rcdm_lib"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("raise ImportError('the rcdm_lib of another checkout was imported')\n")
    env = {**os.environ, "PYTHONPATH": str(other.parent)}
    wrong = []
    for script in sorted((ROOT / "scripts").glob("*.py")):
        r = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, env=env, capture_output=True,
                           text=True)
        if "another checkout" in r.stderr:
            wrong.append(script.name)
    assert not wrong, f"these scripts import rcdm_lib from the environment, not their checkout: {wrong}"


# ---------------------------------------------------------------- acceptance 4: kill -9 during make book

@pytest.mark.slow
def test_kill_9_five_times_then_the_book_of_a_run_never_interrupted(tmp_path):
    """scripts/kill_book.py: `make book PROFILE=smoke`'s command killed (SIGKILL, its whole process group) at five
    random moments, then run to the end, against an uninterrupted build in a second copy (about 10 min here)."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "kill_book.py"), "--work", str(tmp_path / "k"),
                           "--kills", "5", "--seed", "0"], capture_output=True, text=True, timeout=3000)
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "5 kills; books compared: the same chapters, results JSON and pages" in proc.stdout


def test_a_metrics_row_cut_short_by_a_kill_neither_stops_a_resume_nor_is_read(tmp_path):
    from rcdm_lib.training.metrics_log import MetricsLog, read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"step": 2, "loss": 1.0}\n{"step": 4, "loss": 0.9}\n'
                                            '{"step": 6, "loss": 0.8}\n{"step": 8, "lo')
    assert [r["step"] for r in read_metrics(tmp_path)] == [2, 4, 6]
    MetricsLog(tmp_path, truncate_after=4).close()      # a resume from the checkpoint of step 4
    assert [r["step"] for r in read_metrics(tmp_path)] == [2, 4]
