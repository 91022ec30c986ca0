"""Training checkpoints: written atomically, the last N kept, exact resume.

A checkpoint holds the model, the EMA, the optimizer, the step, the RNG states and the
full config. It is written to a temporary file in the same folder, fsynced and renamed,
so `--resume` never reads a partial file. Files from elsewhere are read with
weights_only=True; ours hold only tensors and plain containers, so they load the same way.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from rcdm_lib.user_files import UserFileError, read_torch

CKPT_RE = re.compile(r"^ckpt_(\d{8})\.pt$")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / f"ckpt_{step:08d}.pt"


def list_checkpoints(run_dir) -> list[Path]:
    """Complete checkpoints in `run_dir`, oldest first (temporary files are never listed)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.iterdir() if CKPT_RE.match(p.name))


def atomic_torch_save(obj, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_checkpoint(run_dir, step: int, state: dict, keep_last: int = 2) -> Path:
    """Write `state` as ckpt_<step>.pt and delete all but the newest `keep_last`."""
    path = checkpoint_path(Path(run_dir), step)
    atomic_torch_save(state, path)
    for old in list_checkpoints(run_dir)[:-max(keep_last, 1)]:
        old.unlink(missing_ok=True)
    for stale in Path(run_dir).glob(".ckpt_*.tmp*"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    return path


CHECKPOINT_EXPECTED = "a ckpt_N.pt checkpoint written by a training script of this project into its run folder"


def load_checkpoint(path, map_location="cpu", what: str = "training checkpoint",
                    keys: tuple[str, ...] = ("step",)) -> dict:
    """A checkpoint of our training loop (weights_only=True); a file of another kind is one sentence naming it."""
    state = read_torch(path, what, CHECKPOINT_EXPECTED, map_location=map_location)
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        held = f"a dict without {missing[0]!r}" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise UserFileError(f"{what} {path} is not a checkpoint of this project's training (it holds {held}); "
                            f"expected {CHECKPOINT_EXPECTED}, or an exported .safetensors model")
    return state


def is_whole(path) -> bool:
    """Whether a checkpoint file is complete: torch's zip format ends with its central directory, which a file
    cut short (a full disk, a copy killed halfway) lacks."""
    import zipfile

    try:
        with zipfile.ZipFile(path):
            return True
    except (zipfile.BadZipFile, OSError):
        return False


def latest_checkpoint(run_dir, log=print) -> Path | None:
    """The newest complete checkpoint in `run_dir`. A newer one cut short is renamed `<name>.truncated` (kept for a
    look, never listed again) with a line saying so, and the one before it is taken."""
    for path in reversed(list_checkpoints(run_dir)):
        if is_whole(path):
            return path
        bad = path.with_name(path.name + ".truncated")
        try:
            os.replace(path, bad)
        except FileNotFoundError:   # another process of the run (a DDP rank) renamed it first
            continue
        if log:
            log(f"{path.name} in {Path(run_dir)} is cut short (renamed {bad.name}); resuming from the checkpoint "
                "before it")
    return None


def load_matching_checkpoint(path, current_config: dict, ignore=(), map_location="cpu",
                             defaults: dict | None = None) -> dict:
    """Load a checkpoint to resume from; a ValueError names every field where its saved
    config differs from `current_config` (fields in `ignore` may differ, e.g. the step budget).

    `defaults`: {section: {field: default}}, the values of fields an older checkpoint's section lacks
    (a field added to a config later: the run that wrote the checkpoint trained with its default)."""
    state = load_checkpoint(path, map_location=map_location, keys=("step", "config"))
    saved = dict(state["config"])
    for section, fields in (defaults or {}).items():
        if isinstance(saved.get(section), dict):
            saved[section] = {**fields, **saved[section]}
    diffs = config_mismatches(saved, current_config, ignore=ignore)
    if diffs:
        raise ValueError(f"cannot resume from {path}: it was trained with another config:\n  " + "\n  ".join(diffs))
    return state


def config_mismatches(saved: dict, current: dict, prefix: str = "", ignore=()) -> list[str]:
    """Names of fields that differ between two nested config dicts, as 'a.b: saved X, now Y'."""
    out = []
    for k in sorted(set(saved) | set(current)):
        name = f"{prefix}{k}"
        if k in ignore:
            continue
        a, b = saved.get(k, "<absent>"), current.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_mismatches(a, b, prefix=name + ".", ignore=ignore)
        elif a != b:
            out.append(f"{name}: checkpoint has {a!r}, this run has {b!r}")
    return out
