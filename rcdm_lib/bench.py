"""Helpers of the benchmark scripts: isolated runs and the machine they ran on."""
from __future__ import annotations

import multiprocessing as mp


def run_isolated(target, cases: list[tuple], on_row=None) -> list[dict]:
    """Run target(*case, queue) for each case in a fresh spawned process (its own peak memory);
    return the dicts the cases put on the queue. A failing case is reported and skipped."""
    ctx = mp.get_context("spawn")
    rows = []
    for case in cases:
        q = ctx.Queue()
        proc = ctx.Process(target=target, args=(*case, q))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            print(f"case {case[:1] + case[2:]} failed with exit code {proc.exitcode}")
            continue
        rows.append(q.get())
        if on_row is not None:
            on_row(rows[-1])
    return rows


def machine_line() -> str:
    from rcdm_lib.artifacts import hardware

    hw = hardware()
    s = f"{hw['cpu']}, {hw['cpu_count']} cores, torch {hw['torch']}, {hw['torch_threads']} threads"
    return s + (f"; GPU {hw['cuda']}" if hw["cuda"] else "")
