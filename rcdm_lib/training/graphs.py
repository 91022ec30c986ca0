"""A whole training step captured as one CUDA graph and replayed.

The tiny networks' steps (the 16px UNet, the 32px encoders) are thousands of small kernels; launched
one by one from Python they bound the GPU far below what it can do. `CapturedStep` runs a step body
(forward, loss, backward, optimizer, EMA: whatever the owner's closure does) on static input buffers:

- the first `warmup` steps run eagerly on a side stream (they are real steps: they create the
  optimizer state and other lazily built device tensors, and let cuDNN choose its algorithms);
- the next step is captured and every later one replays the graph;
- on a CPU, or with `graph=False`, every step runs eagerly on the same buffers, which is how the
  tests check that the body computes what the ordinary loop computes.

The body must not make the host wait for the device (no `.item()`, no data-dependent shapes) and
must read per-step scalars (learning rate, EMA rate) from device tensors the owner fills before
each step.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch


class CapturedStep:
    """`step(inputs)` copies `inputs` into the static buffers `self.inputs` and runs `body()` on them.

    `zero_grad` clears the gradients before an eager step and once before the capture (the graph's
    backward then writes fresh gradients on every replay). `step(..., capture=False)` forces an eager
    step and restarts the warm-up count (for steps whose body differs, e.g. frozen parameters early
    in training; the graph is captured only after `warmup` steps of the final body).
    """

    def __init__(self, body: Callable[[], Any], zero_grad: Callable[[], None], graph: bool = True, warmup: int = 3):
        self.body, self.zero_grad, self.use_graph, self.warmup = body, zero_grad, graph, warmup
        self.inputs: list[torch.Tensor] | None = None
        self.graph, self.outputs, self.eager_steps = None, None, 0

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def _load(self, inputs: Sequence[torch.Tensor]) -> None:
        if self.inputs is None:
            self.inputs = [x.clone() for x in inputs]
            return
        for static, new in zip(self.inputs, inputs):
            if static.shape != new.shape:
                raise ValueError(f"a captured step needs inputs of shape {list(static.shape)}, got {list(new.shape)}")
            static.copy_(new, non_blocking=True)

    def step(self, inputs: Sequence[torch.Tensor], capture: bool = True):
        """One step on these inputs; returns the body's outputs (for a replay: the same tensors, valid until
        the next step)."""
        if self.graph is not None and not capture:
            raise RuntimeError("an eager step after the capture would not be the captured body's step")
        self._load(inputs)
        device = self.inputs[0].device
        if device.type != "cuda" or not self.use_graph:
            self.zero_grad()
            return self.body()
        if not capture or self.eager_steps < self.warmup:
            self.eager_steps = self.eager_steps + 1 if capture else 0
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                self.zero_grad()
                out = self.body()
            torch.cuda.current_stream(device).wait_stream(side)
            return out
        if self.graph is None:
            self.zero_grad()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.outputs = self.body()
        self.graph.replay()
        return self.outputs


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """The learning rate of every group: a float, or written into the device tensor a graph reads."""
    for group in opt.param_groups:
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
