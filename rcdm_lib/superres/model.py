"""ADM's super-resolution UNet: the low-resolution image, upsampled, concatenated to the input.

As guided-diffusion's `SuperResModel`: the network is our ADM UNet with twice the image
channels at its input; forward(x_t, t, low_res) upsamples low_res bilinearly to x_t's size
and concatenates it on the channel axis, so the model denoises the high-resolution image
while seeing the low-resolution one at every step. The output has the image's channels
(twice for a learned variance), not the input's.

    cfg = SuperResConfig(image_size=32, small_size=16, model_channels=32, channel_mult=(1, 2, 2))
    model = SuperResUNet(cfg)
    out = model(x_t, t, low_res=lo)   # x_t [N, 3, 32, 32], t [N], lo [N, 3, 16, 16] -> [N, 6, 32, 32]

A class-conditional official upsampler uses `rep` (a one-hot class vector; see
rcdm_lib.superres.official).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from rcdm_lib.fields import at_least
from rcdm_lib.unet import UNet, UNetConfig, config_differences
from rcdm_lib.user_files import load_strict, metadata_json, read_safetensors, safetensors_metadata

FILE_FORMAT = "rcdm_lib.superres"


@dataclass
class SuperResConfig(UNetConfig):
    """UNetConfig of a super-resolution UNet.

    image_size is the large (output) size and small_size the size of the low-resolution
    input, as the official `large_size` / `small_size` flags. in_channels counts the
    concatenated input: 2 x the image channels (6 for RGB), as the official model.
    """

    in_channels: int = at_least(2, 6)
    small_size: int = at_least(1, 32)

    def __post_init__(self):
        if self.in_channels % 2:
            raise ValueError(
                f"in_channels of a super-resolution UNet is 2 x the image channels (x_t and the upsampled "
                f"low-resolution image), so it must be even; got {self.in_channels}"
            )
        if not 0 < int(self.small_size) <= int(self.image_size):
            raise ValueError(f"small_size must be in [1, image_size={self.image_size}], got {self.small_size}")
        self.small_size = int(self.small_size)
        super().__post_init__()

    @property
    def image_channels(self) -> int:
        return self.in_channels // 2

    @property
    def out_channels(self) -> int:
        return self.image_channels * (2 if self.learn_sigma else 1)

    @property
    def scale_factor(self) -> float:
        return self.image_size / self.small_size


def upsample_low_res(low_res: torch.Tensor, size) -> torch.Tensor:
    """[N, C, h, w] -> [N, C, *size], bilinear (align_corners=False), as the official model."""
    return F.interpolate(low_res, size=tuple(size), mode="bilinear", align_corners=False)


class SuperResUNet(UNet):
    """forward(x_t, t, low_res, rep=None) -> [N, out_channels, H, W]; x_t [N, C, H, W], low_res [N, C, h, w]."""

    def __init__(self, config: SuperResConfig):
        if not isinstance(config, SuperResConfig):
            raise TypeError(f"SuperResUNet needs a SuperResConfig, got {type(config).__name__}")
        super().__init__(config)

    def expected_low_res_size(self, x: torch.Tensor) -> tuple[int, int]:
        """The low-resolution size that goes with x_t [N, C, H, W] (the config's small/large ratio)."""
        cfg = self.config
        return (x.shape[2] * cfg.small_size // cfg.image_size, x.shape[3] * cfg.small_size // cfg.image_size)

    def _check_low_res(self, x: torch.Tensor, low_res: torch.Tensor | None) -> None:
        c = self.config.image_channels
        if x.dim() != 4 or x.shape[1] != c:
            raise ValueError(f"x_t must be [N, {c}, H, W] (the high-resolution image), got {list(x.shape)}")
        h, w = self.expected_low_res_size(x)
        want = [x.shape[0], c, h, w]
        if low_res is None:
            raise ValueError(f"this super-resolution UNet needs low_res={want} (the low-resolution image in [-1, 1])")
        if list(low_res.shape) != want:
            raise ValueError(
                f"low_res must be {want} (N, channels and the {self.config.small_size}/{self.config.image_size} "
                f"size of x_t {list(x.shape)}), got {list(low_res.shape)}"
            )

    def forward(self, x: torch.Tensor, t: torch.Tensor, low_res: torch.Tensor | None = None,
                rep: torch.Tensor | None = None) -> torch.Tensor:
        """x [N, C, H, W] noisy high-res images, t [N], low_res [N, C, h, w] -> [N, out_channels, H, W]."""
        self._check_low_res(x, low_res)
        up = upsample_low_res(low_res.to(x.dtype), x.shape[2:])  # [N, C, H, W]
        return super().forward(torch.cat([x, up], dim=1), t, rep=rep)


def save_superres(path, model: SuperResUNet, extra: Mapping[str, Any] | None = None) -> Path:
    """Weights as safetensors with the SuperResConfig (and `extra` metadata) inside."""
    from safetensors.torch import save_file

    meta = {"format": FILE_FORMAT, "superres_config": json.dumps(model.config.to_dict())}
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


SUPERRES_EXPECTED = (f"a super-resolution model of ours (safetensors with metadata format={FILE_FORMAT}), written "
                     "by scripts/train_superres.py; an official ADM upsampler (*_upsampler.pt) is read by "
                     "rcdm_lib.superres.load_official_upsampler")


def read_metadata(path) -> dict:
    return safetensors_metadata(path, "super-resolution model", SUPERRES_EXPECTED)


def load_superres(path, expect_config: SuperResConfig | None = None, device="cpu") -> SuperResUNet:
    """Load a file written by save_superres (scripts/train_superres.py)."""
    what = "super-resolution model"
    meta = safetensors_metadata(path, what, SUPERRES_EXPECTED, fmt=FILE_FORMAT, require=("superres_config",))
    config = SuperResConfig.from_dict(metadata_json(meta, "superres_config", path, what, SUPERRES_EXPECTED))
    if expect_config is not None and config.to_dict() != expect_config.to_dict():
        raise ValueError(f"{path} was trained with another config: "
                         + "; ".join(config_differences(expect_config, config)))
    model = SuperResUNet(config)
    load_strict(model, read_safetensors(path, what, SUPERRES_EXPECTED, device=device), path, what, SUPERRES_EXPECTED)
    return model.to(device)
