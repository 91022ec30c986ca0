"""When to train in bf16: on CUDA, and on CPUs whose matrix units make bf16 faster than fp32.

On a CPU without bf16 hardware (no AMX, no AVX512-BF16) oneDNN emulates bf16 and autocast is slower
than fp32, so a CPU request for bf16 is honoured only where `cpu_has_fast_bf16()` is true.
Measured on the 2-core Xeon with AMX that the tiny profile is budgeted on (2026-11-27):
the tiny encoder trains 2x faster on one thread, the 16px slot UNet 1.2-1.4x on two.
"""
from __future__ import annotations

import torch


def cpu_has_fast_bf16() -> bool:
    """True when this CPU has AMX tiles or AVX512-BF16 and oneDNN can use them."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    try:
        hw = any(bool(f()) for f in checks if f is not None)
        return hw and torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older torch without these probes: assume no
        return False


def use_bf16(device: torch.device | str, cuda: bool = True, cpu: bool = False) -> bool:
    """Whether to autocast in bf16 on `device`: `cuda` on CUDA devices, `cpu` on CPUs with fast bf16."""
    kind = torch.device(device).type
    if kind == "cuda":
        return bool(cuda)
    if kind == "cpu":
        return bool(cpu) and cpu_has_fast_bf16()
    return False
