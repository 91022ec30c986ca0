"""Training metrics: JSONL (always) and TensorBoard (when installed), written by rank 0 only."""
from __future__ import annotations

import json
from pathlib import Path

from rcdm_lib.files import atomic_write_text


def _step(line: str) -> int | None:
    """The step of one metrics row, or None for a blank line or a row cut short (a kill during its write)."""
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None


class MetricsLog:
    """Appends one JSON object per line to run_dir/metrics.jsonl.

    On resume, lines logged after the resumed step (by the run that was interrupted) are
    dropped, so the file describes one consistent run.
    """

    def __init__(self, run_dir, enabled: bool = True, truncate_after: int = 0):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_after and self.path.exists():   # a resume: the rows up to its checkpoint's step
            keep = [ln for ln in self.path.read_text().splitlines()   # a row a kill cut short is dropped
                    if _step(ln) is not None and _step(ln) <= truncate_after]
            atomic_write_text(self.path, "".join(ln + "\n" for ln in keep))
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.path.parent / "tb"))
        except Exception:  # tensorboard is optional
            self._tb = None

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, record["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(run_dir) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if _step(ln) is not None]
