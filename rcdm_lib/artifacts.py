"""Release artifacts: the manifest (sha256, command, hardware, time) and hash checks."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
from pathlib import Path

from rcdm_lib.files import atomic_write_text


def file_sha256(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def hardware() -> dict:
    """The machine a number was measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def update_manifest(path, key: str, entry: dict) -> None:
    """Read-modify-write of a JSON manifest under an exclusive lock (trainings may finish at once)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.is_file() else {}
        data[key] = entry
        atomic_write_text(path, json.dumps(dict(sorted(data.items())), indent=2) + "\n")
    path.with_suffix(".lock").unlink(missing_ok=True)


def verify_manifest(path, root=None) -> list[str]:
    """Problems with the files a manifest lists: missing or with another sha256. Empty if all good."""
    path = Path(path)
    root = Path(root) if root else path.parent
    problems = (entry_problem(key, entry, root) for key, entry in json.loads(path.read_text()).items())
    return [p for p in problems if p]


def entry_problem(key: str, entry: dict, root) -> str | None:
    """What is wrong with the file of one manifest entry (names relative to `root`): missing, or
    another sha256 than the entry's. None if it is the file the entry describes."""
    f = Path(entry["file"])
    f = f if f.is_absolute() else Path(root) / f
    if not f.is_file():
        return f"{key}: {f} is missing"
    sha = file_sha256(f)
    if sha != entry["sha256"]:
        return f"{key}: {f} has sha256 {sha[:12]}..., the manifest says {entry['sha256'][:12]}..."
    return None


def command_line(script: str, argv: list[str]) -> str:
    """The exact shell command that ran `script` (e.g. scripts/train.py) with `argv`."""
    import shlex

    return " ".join(shlex.quote(a) for a in ["python", script, *argv])


def record_artifact(path, *, command: str, device, train_seconds: float, steps: int, key: str | None = None,
                    machine: dict | None = None, **fields) -> dict:
    """Write the manifest entry of a trained file into the manifest.json beside it, and return it.

    One entry per file (`key`, default the file's stem): its name relative to the manifest's
    folder, sha256, size, the command that made it, the hardware (`machine`, default this
    machine's, plus the torch device), training seconds and steps, the date, and any `fields`
    (data spec, final loss, ...).
    """
    import datetime

    path = Path(path)
    entry = {"file": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size, "command": command,
             "hardware": {**(machine or hardware()), "device": str(device)},
             "train_seconds": round(float(train_seconds), 1), "steps": int(steps), **fields,
             "date": datetime.datetime.now().isoformat(timespec="seconds")}
    update_manifest(path.parent / "manifest.json", key or path.stem, entry)
    return entry


def continue_artifact(target, export, *, why: str, key: str | None = None, export_key: str | None = None) -> dict:
    """Replace the shipped `target` with `export`, a run warm-started from it, and extend its manifest entry.

    `export` is a file written by scripts/train.py with its own manifest.json beside it (entry
    `export_key`, default the export's stem). The run must continue the file that is shipped now:
    when its entry records `init_from_sha256`, that must be `target`'s sha256. The two files must
    hold the same UNet config. The target's entry (`key`, default its stem) then gets the new
    sha256, size, command, hardware and date; its steps and train_seconds grow by the run's; the
    run's command, step range and `why` are appended to `runs` and its seconds to `run_seconds`.
    The copy is atomic (temp file, rename). Returns the new entry.
    """
    import shutil

    from .unet import config_differences, read_unet_config

    target, export = Path(target), Path(export)
    manifest, key = target.parent / "manifest.json", key or target.stem
    run_manifest, export_key = export.parent / "manifest.json", export_key or export.stem
    if not run_manifest.is_file():
        raise FileNotFoundError(f"{run_manifest} not found: scripts/train.py writes it beside its --export")
    runs, data = json.loads(run_manifest.read_text()), json.loads(manifest.read_text())
    if export_key not in runs:
        raise KeyError(f"{run_manifest} has no entry {export_key!r} (it has {sorted(runs)})")
    run, entry = runs[export_key], data[key]
    for problem in (entry_problem(export_key, {**run, "file": export.name}, export.parent),
                    entry_problem(key, {**entry, "file": target.name}, target.parent)):
        if problem:
            raise ValueError(problem)
    sha, shipped_sha = run["sha256"], entry["sha256"]
    if run.get("init_from_sha256") not in (None, shipped_sha):
        raise ValueError(f"{export} was warm-started from a file with sha256 {run['init_from_sha256'][:12]}..., "
                         f"not from the shipped {target} ({shipped_sha[:12]}...)")
    diffs = config_differences(read_unet_config(target), read_unet_config(export))
    if diffs:
        raise ValueError(f"{export} has another UNet config than {target}: " + "; ".join(diffs))

    start, end = int(entry["steps"]), int(entry["steps"]) + int(run["steps"])
    device = run.get("hardware", {}).get("device", "?")
    entry.setdefault("runs", []).append(f"{run['command']}   # {start}-{end} on {device} ({run['train_seconds']:.0f} s): {why}")
    entry.setdefault("run_seconds", []).append(run["train_seconds"])
    entry.update(sha256=sha, bytes=export.stat().st_size, command=run["command"], hardware=run["hardware"],
                 date=run["date"], steps=end, train_seconds=round(float(entry["train_seconds"]) + run["train_seconds"], 1))
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(export, tmp)
    tmp.replace(target)
    update_manifest(manifest, key, entry)
    return entry
