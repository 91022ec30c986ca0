"""The training configuration, saved inside every training checkpoint."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from rcdm_lib.fields import above, at_least, between, one_of


@dataclass
class DiffusionConfig:
    """The diffusion process the model is trained for (official create_gaussian_diffusion flags)."""

    steps: int = at_least(1, 1000)
    noise_schedule: str = one_of("linear", "cosine", default="linear")
    learn_sigma: bool = True

    def build(self, timestep_respacing=""):
        from rcdm_lib.diffusion import GaussianDiffusion

        return GaussianDiffusion.from_official(self.steps, self.noise_schedule, self.learn_sigma,
                                               timestep_respacing=timestep_respacing)

    @classmethod
    def from_official_flags(cls, flags) -> "DiffusionConfig":
        """From guided-diffusion's flag names (diffusion_steps, noise_schedule, learn_sigma)."""
        return cls(steps=int(flags.get("diffusion_steps", 1000)), noise_schedule=flags.get("noise_schedule", "linear"),
                   learn_sigma=bool(flags.get("learn_sigma", False)))

    def for_sampling(self, steps: int | None = 50, sampler: str = "ancestral"):
        """The process respaced to `steps` steps for `sampler` (evenly strided for ancestral sampling, "ddimN"
        for DDIM), or the full process for steps=None."""
        if not steps:
            return self.build()
        return self.build(timestep_respacing=f"ddim{steps}" if sampler == "ddim" else str(steps))


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. Fields in RUN_ONLY_FIELDS may change on resume."""

    steps: int = at_least(1, 1000)
    batch_size: int = at_least(1, 64)  # per process; the global batch is batch_size * world_size
    grad_accum: int = at_least(1, 1)   # micro-batches per optimizer step (batch_size must divide)
    lr: float = above(0.0, 1e-4)
    warmup_steps: int = at_least(0, 0)  # linear learning-rate warm-up
    # a cosine decay from lr to lr_final over the steps [lr_decay_start, lr_decay_end], then lr_final; None: lr
    # throughout (after the warm-up). Steps, not fractions of `steps`, so a run extended on resume keeps its schedule
    lr_final: float | None = at_least(0.0, None)
    lr_decay_start: int = at_least(0, 0)
    lr_decay_end: int = at_least(0, 0)
    weight_decay: float = at_least(0.0, 0.0)
    ema_rate: float = between(0.0, 1.0, 0.9999)
    grad_clip: float | None = above(0.0, None)
    p_null: float = between(0.0, 1.0, 0.1)  # probability of the null condition (slot models)
    slot_weights: dict[str, float] | None = None  # relative frequency of slots (slot models); unnamed slots weigh 1;
                                                  # None: uniform
    seed: int = at_least(0, 0)
    log_every: int = at_least(1, 10)
    ckpt_every: int = at_least(1, 200)
    keep_last: int = at_least(1, 2)
    sample_every: int = at_least(0, 0)  # 0: no periodic sample grids
    sample_steps: int = at_least(1, 25)  # DDIM steps for the periodic grids
    bf16: bool = True               # bf16 autocast on CUDA
    cpu_bf16: bool = False          # bf16 autocast on a CPU too, where it has AMX/AVX512-BF16 (rcdm_lib.precision);
                                    # off: CPU trains in fp32 (and always on CPUs without bf16 hardware)
    compile: bool = False           # torch.compile the network for the training step (checkpoints hold the plain module)
    cuda_graph: bool = False        # capture the whole step (network, loss, AdamW, EMA) as one CUDA graph; one process

    def __post_init__(self):
        if self.lr_final is not None and not 0 <= self.lr_decay_start < self.lr_decay_end:
            raise ValueError(f"lr_final needs 0 <= lr_decay_start < lr_decay_end; got lr_decay_start "
                             f"{self.lr_decay_start}, lr_decay_end {self.lr_decay_end}")

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step `step` (0-based): the linear warm-up, then lr, or the cosine
        decay to lr_final."""
        lr = self.lr
        if self.lr_final is not None and step >= self.lr_decay_start:
            p = min(1.0, (step - self.lr_decay_start) / (self.lr_decay_end - self.lr_decay_start))
            lr = self.lr_final + (self.lr - self.lr_final) * 0.5 * (1 + math.cos(math.pi * p))
        if self.warmup_steps:
            lr *= min(1.0, (step + 1) / self.warmup_steps)
        return lr

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "rcdm.train") -> "TrainConfig":
        """From a mapping of field names, checked first (unknown keys, types, ranges: a SettingsError naming each)."""
        from rcdm_lib.settings import check_dataclass_values

        check_dataclass_values(cls, d, where)
        return cls(**d)


# Changing these does not change what is being trained, so a resume may override them. bf16,
# cpu_bf16, compile and cuda_graph are the arithmetic of one machine: a run started on a GPU can finish on a CPU.
RUN_ONLY_FIELDS = {"steps", "log_every", "ckpt_every", "keep_last", "sample_every", "sample_steps", "bf16", "cpu_bf16",
                   "compile", "cuda_graph"}
