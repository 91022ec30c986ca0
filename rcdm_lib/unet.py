"""The ADM UNet (Dhariwal & Nichol 2021) conditioned on a representation, as in RCDM.

Conditioning follows the official RCDM code: one `nn.Linear(rep_dim, time_embed_dim)`
named `ssl_emb` whose output is added to the timestep embedding; every residual block
then applies the ADM scale/shift after GroupNorm(32). Module and parameter names are the
official ones, so the released `rcdm_ema_*.pt` files load strictly.

    model = UNet(UNetConfig(image_size=32, model_channels=32, rep_dim=64))
    out = model(x_t, t, rep=h)     # x_t [N, C, H, W], t [N], h [N, D] -> [N, out_channels, H, W]
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from rcdm_lib.conditioning import SlotLayout
from rcdm_lib.fields import at_least, between
from rcdm_lib.user_files import (load_strict, metadata_json, read_safetensors, read_state_dict,
                                 safetensors_metadata)

CHANNEL_MULT_PRESETS = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
    32: (1, 2, 2, 2),
}


def _int_tuple(value) -> tuple:
    """Official flags write lists as "32,16,8"; accept that at the boundary only."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(float(v) if "." in v else int(v) for v in value.split(",") if v.strip())
    if isinstance(value, (int, float)):
        return (value,)
    return tuple(value)


@dataclass
class UNetConfig:
    """Constructor arguments of the UNet; saved inside every checkpoint of ours.

    attention_resolutions are image resolutions (as in the official flags), e.g.
    (32, 16, 8) for a 128px model means attention at downsampling factors 4, 8, 16.
    rep_slots is the conditioning layout ((name, dim), ...); rep_dim=D is shorthand for
    one slot named "rep". No slots means an unconditional model (no `ssl_emb`).
    """

    image_size: int = at_least(1, 64)
    in_channels: int = at_least(1, 3)
    model_channels: int = at_least(1, 128)
    num_res_blocks: int = at_least(1, 2)
    attention_resolutions: tuple = (32, 16, 8)
    channel_mult: tuple | None = None
    learn_sigma: bool = True
    num_heads: int = at_least(1, 4)
    num_head_channels: int = at_least(-1, -1)
    num_heads_upsample: int = at_least(-1, -1)
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True
    conv_resample: bool = True
    use_new_attention_order: bool = False
    dropout: float = between(0.0, 1.0, 0.0)
    use_checkpoint: bool = False
    rep_dim: int | None = at_least(1, None)
    rep_slots: tuple = field(default_factory=tuple)
    # Standardise each filled slot with the training features' per-dimension mean and std
    # (buffers rep_mean/rep_std, set by the training loop) before ssl_emb; empty slots and the
    # null condition stay zero. Off in the official layout; measured to speed up learning the
    # conditioning of the tiny slot model (SSL features share a large constant offset).
    rep_standardise: bool = False

    def __post_init__(self):
        self.attention_resolutions = tuple(int(r) for r in _int_tuple(self.attention_resolutions))
        if self.channel_mult in (None, "", ()):
            if self.image_size not in CHANNEL_MULT_PRESETS:
                raise ValueError(
                    f"no channel_mult preset for image_size {self.image_size}; expected one of "
                    f"{sorted(CHANNEL_MULT_PRESETS)} or an explicit channel_mult"
                )
            self.channel_mult = CHANNEL_MULT_PRESETS[self.image_size]
        else:
            self.channel_mult = _int_tuple(self.channel_mult)
        if self.rep_slots:
            layout = SlotLayout.from_any(self.rep_slots)
            if self.rep_dim is not None and self.rep_dim != layout.dim:
                raise ValueError(
                    f"rep_dim {self.rep_dim} disagrees with the slot layout {layout.slots} (total {layout.dim})"
                )
            self.rep_slots = layout.slots
            self.rep_dim = layout.dim
        elif self.rep_dim is not None:
            self.rep_dim = int(self.rep_dim)
            self.rep_slots = (("rep", self.rep_dim),)
        factor = self.downsample_factor
        if self.image_size % factor != 0:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by the downsampling factor {factor} "
                f"of channel_mult {self.channel_mult}; expected a multiple of {factor}"
            )
        if self.num_heads_upsample == -1:
            self.num_heads_upsample = self.num_heads

    @property
    def out_channels(self) -> int:
        return self.in_channels * (2 if self.learn_sigma else 1)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def slot_layout(self) -> SlotLayout | None:
        return SlotLayout.from_any(self.rep_slots) if self.rep_slots else None

    @property
    def time_embed_dim(self) -> int:
        return self.model_channels * 4

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["attention_resolutions"] = list(self.attention_resolutions)
        d["channel_mult"] = list(self.channel_mult)
        d["rep_slots"] = [list(s) for s in self.rep_slots]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "UNetConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown UNetConfig fields {sorted(unknown)}; expected a subset of {sorted(known)}")
        d = dict(d)
        if "rep_slots" in d:
            d["rep_slots"] = tuple(tuple(s) for s in d["rep_slots"])
        return cls(**d)

    @classmethod
    def from_official_flags(cls, flags: Mapping[str, Any], ssl_dim: int | None = None) -> "UNetConfig":
        """Build from the official RCDM / guided-diffusion flag names and forms.

        Accepts `num_channels`, `channel_mult: "1,2,2"`, `attention_resolutions: "16,8"`,
        `feat_cond`, `ssl_dim`, ... Flags that do not change the architecture
        (use_fp16, timestep settings) are ignored.
        """
        flags = dict(flags)
        if flags.get("class_cond"):
            raise ValueError("class_cond=True is not supported: RCDM conditions on a representation (feat_cond)")
        ssl_dim = ssl_dim if ssl_dim is not None else flags.get("ssl_dim")
        rep_dim = None
        if flags.get("feat_cond", ssl_dim is not None):
            if ssl_dim is None:
                raise ValueError("feat_cond=True needs ssl_dim (the representation width), got none")
            rep_dim = int(ssl_dim)
        return cls(
            image_size=int(flags.get("image_size", 64)),
            model_channels=int(flags.get("num_channels", 128)),
            num_res_blocks=int(flags.get("num_res_blocks", 2)),
            attention_resolutions=flags.get("attention_resolutions", "16,8"),
            channel_mult=flags.get("channel_mult") or None,
            learn_sigma=bool(flags.get("learn_sigma", False)),
            num_heads=int(flags.get("num_heads", 4)),
            num_head_channels=int(flags.get("num_head_channels", -1)),
            num_heads_upsample=int(flags.get("num_heads_upsample", -1)),
            use_scale_shift_norm=bool(flags.get("use_scale_shift_norm", True)),
            resblock_updown=bool(flags.get("resblock_updown", False)),
            use_new_attention_order=bool(flags.get("use_new_attention_order", False)),
            dropout=float(flags.get("dropout", 0.0)),
            use_checkpoint=bool(flags.get("use_checkpoint", False)),
            rep_dim=rep_dim,
        )


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps t [N] -> [N, dim] (float32)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm(32) computed in float32 whatever the input dtype (as the official code)."""

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


def normalization(channels: int) -> nn.Module:
    return GroupNorm32(32, channels)


def zero_module(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class TimestepBlock(nn.Module):
    """A block whose forward takes the embedding as a second argument."""


class TimestepEmbedSequential(nn.Sequential, TimestepBlock):
    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, TimestepBlock) else layer(x)
        return x


class Upsample(nn.Module):
    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, self.out_channels, 3, padding=1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        self.out_channels = out_channels or channels
        if use_conv:
            self.op = nn.Conv2d(channels, self.out_channels, 3, stride=2, padding=1)
        else:
            assert self.out_channels == channels
            self.op = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x):
        return self.op(x)


class ResBlock(TimestepBlock):
    """Residual block with the timestep(+representation) embedding as scale/shift."""

    def __init__(self, channels, emb_channels, dropout, out_channels=None, use_scale_shift_norm=True,
                 use_checkpoint=False, up=False, down=False):
        super().__init__()
        self.out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.use_checkpoint = use_checkpoint
        self.in_layers = nn.Sequential(
            normalization(channels), nn.SiLU(), nn.Conv2d(channels, self.out_channels, 3, padding=1)
        )
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * self.out_channels if use_scale_shift_norm else self.out_channels)
        )
        self.out_layers = nn.Sequential(
            normalization(self.out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            zero_module(nn.Conv2d(self.out_channels, self.out_channels, 3, padding=1)),
        )
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(channels, self.out_channels, 1)

    def forward(self, x, emb):
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return grad_checkpoint(self._forward, x, emb, use_reentrant=False)
        return self._forward(x, emb)

    def _forward(self, x, emb):
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.h_upd(h)
            x = self.x_upd(x)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)[:, :, None, None]  # [N, 2C or C, 1, 1]
        if self.use_scale_shift_norm:
            scale, shift = torch.chunk(emb_out, 2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Spatial self-attention; qkv head layout of the official QKVAttentionLegacy (or the new order)."""

    def __init__(self, channels, num_heads=1, num_head_channels=-1, use_checkpoint=False,
                 use_new_attention_order=False):
        super().__init__()
        if num_head_channels == -1:
            self.num_heads = num_heads
        else:
            if channels % num_head_channels != 0:
                raise ValueError(f"channels {channels} not divisible by num_head_channels {num_head_channels}")
            self.num_heads = channels // num_head_channels
        if channels % self.num_heads != 0:
            raise ValueError(f"channels {channels} not divisible by num_heads {self.num_heads}")
        self.use_checkpoint = use_checkpoint
        self.new_order = use_new_attention_order
        self.norm = normalization(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x):
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return grad_checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def _forward(self, x):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)  # [N, C, T]
        qkv = self.qkv(self.norm(x))  # [N, 3C, T]
        n_heads, ch, length = self.num_heads, c // self.num_heads, x.shape[-1]
        if self.new_order:
            q, k, v = qkv.chunk(3, dim=1)
            q, k, v = (z.reshape(b * n_heads, ch, length) for z in (q, k, v))
        else:
            q, k, v = qkv.reshape(b * n_heads, ch * 3, length).split(ch, dim=1)  # each [N*H, ch, T]
        # SDPA scales by 1/sqrt(ch), the same as the official (q*ch^-1/4)·(k*ch^-1/4).
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        h = a.transpose(1, 2).reshape(b, c, length)  # [N, C, T]
        h = self.proj_out(h)
        return (x + h).reshape(b, c, *spatial)


class UNet(nn.Module):
    """ADM UNet with representation conditioning. forward(x_t, t, rep=None) -> [N, out_channels, H, W]."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = cfg = config
        mc, ted = cfg.model_channels, cfg.time_embed_dim
        attention_ds = {cfg.image_size // r for r in cfg.attention_resolutions}
        self.time_embed = nn.Sequential(nn.Linear(mc, ted), nn.SiLU(), nn.Linear(ted, ted))
        if cfg.rep_dim is not None:
            self.ssl_emb = nn.Linear(cfg.rep_dim, ted)
            if cfg.rep_standardise:
                self.register_buffer("rep_mean", torch.zeros(cfg.rep_dim))
                self.register_buffer("rep_std", torch.ones(cfg.rep_dim))
        elif cfg.rep_standardise:
            raise ValueError("rep_standardise=True needs a conditioned UNet (rep_dim or rep_slots), got none")

        def res(ch_in, ch_out, **kw):
            return ResBlock(ch_in, ted, cfg.dropout, out_channels=ch_out,
                            use_scale_shift_norm=cfg.use_scale_shift_norm, use_checkpoint=cfg.use_checkpoint, **kw)

        def attn(ch, heads):
            return AttentionBlock(ch, num_heads=heads, num_head_channels=cfg.num_head_channels,
                                  use_checkpoint=cfg.use_checkpoint,
                                  use_new_attention_order=cfg.use_new_attention_order)

        ch = input_ch = int(cfg.channel_mult[0] * mc)
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(nn.Conv2d(cfg.in_channels, ch, 3, padding=1))])
        input_block_chans, ds = [ch], 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers = [res(ch, int(mult * mc))]
                ch = int(mult * mc)
                if ds in attention_ds:
                    layers.append(attn(ch, cfg.num_heads))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                input_block_chans.append(ch)
            if level != len(cfg.channel_mult) - 1:
                down = res(ch, ch, down=True) if cfg.resblock_updown else Downsample(ch, cfg.conv_resample)
                self.input_blocks.append(TimestepEmbedSequential(down))
                input_block_chans.append(ch)
                ds *= 2
        self.middle_block = TimestepEmbedSequential(res(ch, ch), attn(ch, cfg.num_heads), res(ch, ch))
        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(cfg.channel_mult))[::-1]:
            for i in range(cfg.num_res_blocks + 1):
                ich = input_block_chans.pop()
                layers = [res(ch + ich, int(mc * mult))]
                ch = int(mc * mult)
                if ds in attention_ds:
                    layers.append(attn(ch, cfg.num_heads_upsample))
                if level and i == cfg.num_res_blocks:
                    layers.append(res(ch, ch, up=True) if cfg.resblock_updown else Upsample(ch, cfg.conv_resample))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(
            normalization(ch), nn.SiLU(), zero_module(nn.Conv2d(input_ch, cfg.out_channels, 3, padding=1))
        )

    @property
    def rep_dim(self) -> int | None:
        return self.config.rep_dim

    @torch.no_grad()
    def set_rep_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-dimension statistics [D] of the training representations (rep_standardise models)."""
        if not self.config.rep_standardise:
            raise ValueError("this UNet was built with rep_standardise=False; it has no representation statistics")
        d = self.config.rep_dim
        if mean.shape != (d,) or std.shape != (d,):
            raise ValueError(f"rep statistics must be [{d}] each, got {list(mean.shape)} and {list(std.shape)}")
        if not bool((std > 0).all()):
            raise ValueError("rep_std must be positive in every dimension")
        self.rep_mean.copy_(mean)
        self.rep_std.copy_(std)

    def _standardise(self, rep: torch.Tensor) -> torch.Tensor:
        """(h - mean) / std inside every filled slot; all-zero (empty) slots stay zero. [N, D] -> [N, D]."""
        z = (rep - self.rep_mean.to(rep.dtype)) / self.rep_std.to(rep.dtype)
        out = []
        for start, end in self._slot_ranges():
            filled = rep[:, start:end].abs().sum(dim=1, keepdim=True) > 0   # [N, 1]
            out.append(torch.where(filled, z[:, start:end], torch.zeros_like(z[:, start:end])))
        return torch.cat(out, dim=1)

    def _slot_ranges(self) -> list[tuple[int, int]]:
        layout = self.config.slot_layout
        return [layout.offset(name) for name in layout.names]

    def null_rep(self, n: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """The null condition (all slots zero) [N, D] for slot models / classifier-free guidance."""
        if self.config.rep_dim is None:
            raise ValueError("this UNet is unconditional (rep_dim=None); it has no null representation")
        return torch.zeros(n, self.config.rep_dim, device=device, dtype=dtype)

    def _check_inputs(self, x, t, rep):
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"x must be [N, {cfg.in_channels}, H, W], got {list(x.shape)}")
        f = cfg.downsample_factor
        if x.shape[2] % f or x.shape[3] % f:
            raise ValueError(
                f"image size {tuple(x.shape[2:])} is not divisible by the UNet's downsampling factor {f}"
            )
        if t.dim() != 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f"t must be [N] with N={x.shape[0]}, got {list(t.shape)}")
        if cfg.rep_dim is None:
            if rep is not None:
                raise ValueError("this UNet is unconditional (rep_dim=None) but a representation was given")
        else:
            if rep is None:
                raise ValueError(
                    f"this UNet is conditioned on a {cfg.rep_dim}-d representation; pass rep=[N, {cfg.rep_dim}] "
                    "(model.null_rep(N) for the null condition)"
                )
            if rep.dim() != 2 or rep.shape[0] != x.shape[0] or rep.shape[1] != cfg.rep_dim:
                raise ValueError(
                    f"rep must be [N, rep_dim] = [{x.shape[0]}, {cfg.rep_dim}], got {list(rep.shape)}"
                )

    def forward(self, x: torch.Tensor, t: torch.Tensor, rep: torch.Tensor | None = None) -> torch.Tensor:
        """x [N, C, H, W] noisy images, t [N] timesteps, rep [N, D] -> [N, out_channels, H, W]."""
        self._check_inputs(x, t, rep)
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels).to(x.dtype))  # [N, 4*mc]
        if rep is not None:
            rep = rep.to(emb.dtype)
            if self.config.rep_standardise:
                rep = self._standardise(rep)
            emb = emb + self.ssl_emb(rep)
        hs, h = [], x
        for module in self.input_blocks:
            h = module(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = module(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h.type(x.dtype))


# ---------------------------------------------------------------------------------------------
# Checkpoints: the official .pt state dicts, and ours (safetensors with the config inside).

OFFICIAL_128_FLAGS = dict(
    image_size=128, num_channels=256, num_res_blocks=2, learn_sigma=True, attention_resolutions="32,16,8",
    num_heads=4, use_scale_shift_norm=True, resblock_updown=True, feat_cond=True,
)


def compare_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, list]:
    """Names of missing, unexpected and mis-shaped keys of `state_dict` for `model`."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    misshaped = [
        (k, tuple(own[k].shape), tuple(state_dict[k].shape))
        for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)
    ]
    return {"missing": missing, "unexpected": unexpected, "misshaped": misshaped}


def raise_on_mismatch(report: dict, source: str, what: str = "the UNet config",
                      hint: str = "Build the UNet with the flags the checkpoint was trained with.") -> None:
    """Raise a ValueError listing a compare_state_dict report (missing, unexpected, mis-shaped keys)."""
    if not any(report.values()):
        return
    lines = [f"checkpoint {source} does not match {what}:"]
    if report["missing"]:
        lines.append(f"  missing keys ({len(report['missing'])}): {report['missing'][:10]}")
    if report["unexpected"]:
        lines.append(f"  unexpected keys ({len(report['unexpected'])}): {report['unexpected'][:10]}")
    for k, want, got in report["misshaped"][:10]:
        lines.append(f"  {k}: expected shape {list(want)}, checkpoint has {list(got)}")
    lines.append(hint)
    raise ValueError("\n".join(lines))


OFFICIAL_RCDM_EXPECTED = ("an official RCDM file (rcdm_ema_*.pt, a state dict), published at "
                          "https://github.com/facebookresearch/RCDM (see its README for the download links)")
OUR_UNET_EXPECTED = ("an RCDM model written by scripts/train.py (safetensors with metadata format=rcdm_lib.unet); "
                     "an official rcdm_ema_*.pt file is read by load_official_checkpoint")


def load_official_checkpoint(source, config: UNetConfig | None = None, map_location="cpu") -> UNet:
    """Load an official RCDM file (`rcdm_ema_*.pt`, a plain state dict) into our UNet, strictly.

    Without `config`, the released 128px flags are assumed, with rep_dim read from the
    file's `ssl_emb.weight`. A missing, unexpected or mis-shaped key raises a ValueError
    that names it.
    """
    if isinstance(source, Mapping):
        state_dict, name = source, "<state dict>"
        if isinstance(state_dict.get("state_dict"), Mapping):
            state_dict = state_dict["state_dict"]
        state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    else:
        state_dict = read_state_dict(source, "RCDM checkpoint", OFFICIAL_RCDM_EXPECTED, map_location=map_location)
        name = str(source)
    if config is None:
        ssl = state_dict.get("ssl_emb.weight")
        flags = OFFICIAL_128_FLAGS if ssl is not None else {**OFFICIAL_128_FLAGS, "feat_cond": False}
        config = UNetConfig.from_official_flags(flags, ssl_dim=None if ssl is None else ssl.shape[1])
    with torch.device("meta"):
        probe = UNet(config)
    raise_on_mismatch(compare_state_dict(probe, state_dict), name)
    model = UNet(config)
    model.load_state_dict(state_dict, strict=True)
    return model


def save_unet(path, model: UNet, extra: Mapping[str, Any] | None = None) -> None:
    """Write weights as safetensors with the UNetConfig (and `extra` metadata) inside."""
    from safetensors.torch import save_file

    meta = {"format": "rcdm_lib.unet", "unet_config": json.dumps(model.config.to_dict())}
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def config_differences(a: UNetConfig, b: UNetConfig) -> list[str]:
    da, db = a.to_dict(), b.to_dict()
    return [f"{k}: expected {da[k]!r}, got {db[k]!r}" for k in da if da[k] != db[k]]


def read_unet_config(path) -> UNetConfig:
    """The UNetConfig stored inside one of our safetensors UNet files (the weights are not read)."""
    meta = safetensors_metadata(path, "UNet file", OUR_UNET_EXPECTED, fmt="rcdm_lib.unet", require=("unet_config",))
    return UNetConfig.from_dict(metadata_json(meta, "unet_config", path, "UNet file", OUR_UNET_EXPECTED))


def read_unet_extra(path, key: str):
    """A value that save_unet stored with `extra` (JSON-decoded; a plain string as it was stored), or None when
    the file has none."""
    value = safetensors_metadata(path, "UNet file", OUR_UNET_EXPECTED).get(key)
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def load_unet(path, expect_config: UNetConfig | None = None, device="cpu") -> UNet:
    """Load one of our safetensors UNet files. With `expect_config`, a file of another config
    raises a ValueError naming the differing fields."""
    path = Path(path)
    config = read_unet_config(path)
    if expect_config is not None and config.to_dict() != expect_config.to_dict():
        raise ValueError(
            f"{path} was trained with another UNet config: " + "; ".join(config_differences(expect_config, config))
        )
    model = UNet(config)
    load_strict(model, read_safetensors(path, "UNet file", OUR_UNET_EXPECTED, device=device), path, "UNet file",
                OUR_UNET_EXPECTED)
    return model.to(device)
