"""Release artifacts: the manifest (sha256, command, hardware, time) and hash checks."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
from pathlib import Path


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
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")
        tmp.replace(path)
    path.with_suffix(".lock").unlink(missing_ok=True)


def verify_manifest(path, root=None) -> list[str]:
    """Problems with the files a manifest lists: missing or with another sha256. Empty if all good."""
    path = Path(path)
    root = Path(root) if root else path.parent
    problems = []
    for key, entry in json.loads(path.read_text()).items():
        f = Path(entry["file"])
        f = f if f.is_absolute() else root / f
        if not f.is_file():
            problems.append(f"{key}: {f} is missing")
        elif file_sha256(f) != entry["sha256"]:
            problems.append(f"{key}: {f} has sha256 {file_sha256(f)[:12]}..., the manifest says {entry['sha256'][:12]}...")
    return problems


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
