"""The training configuration, saved inside every training checkpoint."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass
class DiffusionConfig:
    """The diffusion process the model is trained for (official create_gaussian_diffusion flags)."""

    steps: int = 1000
    noise_schedule: str = "linear"
    learn_sigma: bool = True

    def build(self, timestep_respacing=""):
        from rcdm_lib.diffusion import GaussianDiffusion

        return GaussianDiffusion.from_official(self.steps, self.noise_schedule, self.learn_sigma,
                                               timestep_respacing=timestep_respacing)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. Fields in RUN_ONLY_FIELDS may change on resume."""

    steps: int = 1000
    batch_size: int = 64            # per process; the global batch is batch_size * world_size
    grad_accum: int = 1             # micro-batches per optimizer step (batch_size must divide)
    lr: float = 1e-4
    warmup_steps: int = 0           # linear learning-rate warm-up
    weight_decay: float = 0.0
    ema_rate: float = 0.9999
    grad_clip: float | None = None
    p_null: float = 0.1             # probability of the null condition (slot models)
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    keep_last: int = 2
    sample_every: int = 0           # 0: no periodic sample grids
    sample_steps: int = 25          # DDIM steps for the periodic grids
    bf16: bool = True               # bf16 autocast on CUDA
    cpu_bf16: bool = False          # bf16 autocast on a CPU too, where it has AMX/AVX512-BF16 (rcdm_lib.precision);
                                    # off: CPU trains in fp32 (and always on CPUs without bf16 hardware)
    compile: bool = False           # torch.compile the network for the training step (checkpoints hold the plain module)
    cuda_graph: bool = False        # capture the whole step (network, loss, AdamW, EMA) as one CUDA graph; one process

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**d)


# Changing these does not change what is being trained, so a resume may override them. bf16,
# cpu_bf16, compile and cuda_graph are the arithmetic of one machine: a run started on a GPU can finish on a CPU.
RUN_ONLY_FIELDS = {"steps", "log_every", "ckpt_every", "keep_last", "sample_every", "sample_steps", "bf16", "cpu_bf16",
                   "compile", "cuda_graph"}
