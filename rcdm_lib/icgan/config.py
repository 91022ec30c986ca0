"""IC-GAN configurations: the architecture and the training, both saved inside every checkpoint."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from rcdm_lib.fields import above, at_least, between


def _from_dict(cls, d: Mapping[str, Any]):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; expected a subset of {sorted(known)}")
    return cls(**d)


@dataclass
class ICGANConfig:
    """Generator and discriminator of IC-GAN (Casanova et al. 2021): BigGAN conditioned on an
    instance representation h instead of a class.

    G: z [N, dim_z] and h [N, rep_dim] -> x [N, 3, S, S]. h is L2-normalised (as in IC-GAN) and
    embedded by a linear map to `shared_dim_feat` dims; every residual block's conditional batch
    norm reads [embed(h), z_chunk] (hierarchical z: one chunk for the first linear layer, one per
    block). G block i maps g_ch * g_ch_mult[i] -> g_ch * g_ch_mult[i + 1] channels and doubles the
    size, from bottom_width up to image_size.
    D: block i outputs d_ch * d_ch_mult[i] channels and halves the size, except the last block.
    The official 128px model is `OFFICIAL_ICGAN_128` (rcdm_lib/icgan/official.py).
    """

    image_size: int = at_least(1, 16)
    rep_dim: int = at_least(1, 128)
    dim_z: int = at_least(1, 60)
    hier: bool = True
    shared_dim_feat: int = at_least(1, 64)
    g_ch: int = at_least(1, 32)
    g_ch_mult: tuple[int, ...] = at_least(1, (4, 2, 1))
    g_attention: tuple[int, ...] = at_least(1, ())        # resolutions with self-attention in G
    d_ch: int = at_least(1, 32)
    d_ch_mult: tuple[int, ...] = at_least(1, (1, 2, 4))
    d_attention: tuple[int, ...] = at_least(1, ())
    bottom_width: int = at_least(1, 4)
    n_classes: int = at_least(0, 0)                       # the official file keeps an (unused) class embedding
    shared_dim: int = at_least(0, 0)
    normalize_rep: bool = True
    bn_eps: float = above(0.0, 1e-5)                     # BigGAN-PyTorch defaults
    sn_eps: float = above(0.0, 1e-6)

    def __post_init__(self):
        self.g_ch_mult, self.d_ch_mult = tuple(self.g_ch_mult), tuple(self.d_ch_mult)
        self.g_attention, self.d_attention = tuple(self.g_attention), tuple(self.d_attention)
        n_up = len(self.g_ch_mult) - 1
        if n_up < 1 or self.bottom_width * 2 ** n_up != self.image_size:
            raise ValueError(
                f"g_ch_mult {list(self.g_ch_mult)} gives {n_up} upsampling blocks, so images of "
                f"{self.bottom_width} x 2^{n_up} = {self.bottom_width * 2 ** max(n_up, 0)} px, but image_size is "
                f"{self.image_size}; use {round(math.log2(self.image_size / self.bottom_width)) + 1} multipliers")
        if len(self.d_ch_mult) < 1 or self.image_size % 2 ** (len(self.d_ch_mult) - 1):
            raise ValueError(f"d_ch_mult {list(self.d_ch_mult)} halves {self.image_size} px "
                             f"{len(self.d_ch_mult) - 1} times; use fewer blocks")
        if self.hier and self.dim_z % self.num_slots:
            raise ValueError(f"hierarchical z splits dim_z into {self.num_slots} equal chunks (one per G block "
                             f"plus one); dim_z={self.dim_z} is not divisible, use e.g. "
                             f"{self.num_slots * max(1, self.dim_z // self.num_slots)}")

    @property
    def num_slots(self) -> int:
        return len(self.g_ch_mult) if self.hier else 1

    @property
    def z_chunk(self) -> int:
        return self.dim_z // self.num_slots

    @property
    def cond_size(self) -> int:
        """Input size of every conditional batch norm: [embed(h), z_chunk]."""
        return self.shared_dim_feat + (self.z_chunk if self.hier else 0)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ICGANConfig":
        return _from_dict(cls, d)


@dataclass
class ICGANTrainConfig:
    """Training of IC-GAN: hinge loss, Adam(0, 0.999), EMA of G, k-NN neighbourhoods.

    Each D step pairs an instance i with a real image drawn uniformly from its k_nn nearest
    neighbours in representation space (i itself excluded) and a fake G(z, h_j) for an
    independently drawn instance j. Defaults of IC-GAN at 128px: k_nn 50, batch 64*32 GPUs,
    G_lr 4e-5, D_lr 1e-4, num_D_steps 1, EMA 0.9999 from iteration 20000.
    """

    steps: int = at_least(1, 1000)
    batch_size: int = at_least(1, 64)
    k_nn: int = at_least(1, 50)
    g_lr: float = above(0.0, 2e-4)
    d_lr: float = above(0.0, 2e-4)
    betas: tuple[float, float] = between(0.0, 1.0, (0.0, 0.999))
    adam_eps: float = above(0.0, 1e-6)
    num_d_steps: int = at_least(1, 1)
    ema_rate: float = between(0.0, 1.0, 0.999)
    ema_start: int = at_least(0, 0)               # before this step the EMA copies G (BigGAN's ema_start)
    standing_batches: int = at_least(0, 16)       # batches for the EMA generator's batch-norm statistics at the end
    seed: int = at_least(0, 0)
    log_every: int = at_least(1, 50)
    ckpt_every: int = at_least(1, 500)
    keep_last: int = at_least(1, 2)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        if self.k_nn < 1:
            raise ValueError(f"k_nn must be >= 1, got {self.k_nn}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ICGANTrainConfig":
        return _from_dict(cls, d)


# Changing these does not change what is being trained, so a resume may override them.
RUN_ONLY_FIELDS = {"steps", "log_every", "ckpt_every", "keep_last", "standing_batches"}
