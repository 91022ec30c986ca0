"""Writes a later run trusts, and folders one run at a time.

- `atomic_write_text`, `atomic_copy`: through a temporary file in the destination's folder and a rename, so a
  kill leaves the old file or the new one, never half of one.
- `RunLock`: a run folder is held by one process; a second gets "in use by PID N". A lock left by a process that
  no longer exists (a kill) is taken over.
"""
from __future__ import annotations

import functools
import inspect
import os
import shutil
from pathlib import Path


def _tmp(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.tmp"


def atomic_write_text(path, text: str) -> Path:
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def atomic_copy(src, dst) -> Path:
    dst = Path(dst)
    tmp = _tmp(dst)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


class RunInUse(RuntimeError):
    """Another live process holds the run folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process: alive
        return True
    return True


class RunLock:
    """Hold `folder` for this process (a `.lock` file holding the PID, created exclusively).

        with RunLock(run_dir):
            ...   # train, write checkpoints and metrics
    """

    NAME = ".lock"

    def __init__(self, folder, what: str = "run folder"):
        self.folder, self.what = Path(folder), what
        self.path = self.folder / self.NAME
        self.held = False

    def acquire(self) -> "RunLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise RunInUse(f"{self.what} {self.folder} is in use by PID {pid}: wait for that run to end, or "
                                   "choose another folder (--out)") from None
                self.path.unlink(missing_ok=True)   # left by a process that is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.held = True
            return self
        raise RunInUse(f"{self.what} {self.folder}: could not take {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holding_run_dir(fn):
    """Decorate a training function of one process so that it runs holding its `run_dir` argument (RunLock); with
    run_dir None (training in memory) there is nothing to hold."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        run_dir = sig.bind_partial(*args, **kwargs).arguments.get("run_dir")
        if run_dir is None:
            return fn(*args, **kwargs)
        with RunLock(run_dir):
            return fn(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- exports: only when asked for

def add_export_arg(parser, key: str, what: str = "the final EMA weights") -> None:
    """--export [PATH] for a training script: a shipped file is written only when the command says so."""
    parser.add_argument(
        "--export", nargs="?", const="", default=None, metavar="PATH",
        help=f"write {what} here when training ends; --export alone writes {key} of the settings (the shipped "
             "file the book checks). Without it nothing outside the run folder is written")


def export_target(option: str | None, default, key: str) -> Path | None:
    """Where a training script exports: None without --export, the settings' `default` (key `key`) for a bare
    --export, else the path given. The folder is checked writable now, so a run does not train for nothing."""
    if option is None:
        return None
    if option == "" and not default:
        raise ValueError(f"--export without a path writes {key}, which the settings do not set; give a path "
                         "(--export PATH) or set the key in your --config file")
    path = Path(option or default).expanduser().resolve()
    check_writable(path, f"--export {path}")
    return path


def check_writable(path, what: str) -> None:
    """A ValueError naming `what` when `path` cannot be written: a folder in its place, a file or folder without
    write permission, or a first existing parent that cannot take a new folder."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what}: {path} is a folder; expected a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what}: {path} exists and is not writable by this user")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what}: {parent} is a file, so the folder {path.parent} cannot be made")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: the folder {parent} is not writable by this user")


def not_exported_note(key: str, default) -> str:
    """What a training script says when it ends without --export."""
    where = f" ({default})" if default else ""
    return (f"not exported: the weights stay in the run folder; add --export to write them to {key}{where}, "
            "or --export PATH")
