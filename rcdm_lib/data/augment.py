"""SSL augmentation pipelines, batched in torch so they run at CPU-training speed on small images.

Works on float images [N x 3 x H x W] in [-1, 1] on any device; each image draws its own random
parameters (from `generator` when given, so a run is reproducible). The menu is the SimCLR /
BYOL / DINO one: random resized crop, horizontal flip, colour jitter, grayscale, Gaussian blur,
solarize, plus additive Gaussian noise (the "Dino+n" augmentation of the paper).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from rcdm_lib.fields import above, at_least, between


@dataclass
class AugmentConfig:
    crop_scale: tuple[float, float] = between(0.0, 1.0, (0.25, 1.0))   # area fraction of the random resized crop
    crop_ratio: tuple[float, float] = above(0.0, (3 / 4, 4 / 3))
    flip_p: float = between(0.0, 1.0, 0.5)
    jitter_p: float = between(0.0, 1.0, 0.8)
    brightness: float = at_least(0.0, 0.4)
    contrast: float = at_least(0.0, 0.4)
    saturation: float = at_least(0.0, 0.4)
    hue: float = between(0.0, 0.5, 0.1)
    gray_p: float = between(0.0, 1.0, 0.2)
    blur_p: float = between(0.0, 1.0, 0.0)
    blur_sigma: tuple[float, float] = above(0.0, (0.1, 1.0))   # pixels at 32x32; scaled with image size
    solarize_p: float = between(0.0, 1.0, 0.0)
    noise_std: float = at_least(0.0, 0.0)                        # additive N(0, std^2) in [-1, 1] units
    noise_p: float = between(0.0, 1.0, 0.0)
    out_size: int = at_least(0, 0)                  # output side; 0 = input side (DINO local crops: smaller)

    @classmethod
    def from_dict(cls, d: dict | None) -> "AugmentConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown augmentation settings {sorted(unknown)}; expected some of {sorted(cls.__dataclass_fields__)}")
        for k in ("crop_scale", "crop_ratio", "blur_sigma"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def _u(n, lo, hi, g, device):
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


def _coin(n, p, g, device):
    return torch.rand(n, generator=g, device=device) < p


def random_resized_crop(x, scale, ratio, flip_p=0.0, generator=None, out_size: int = 0):
    """Per-image random resized crop (+ optional horizontal flip) to out_size (0: input size)."""
    n, dev = x.shape[0], x.device
    area = _u(n, scale[0], scale[1], generator, dev)
    logr = _u(n, math.log(ratio[0]), math.log(ratio[1]), generator, dev)
    r = torch.exp(logr)
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (2 * torch.rand(n, generator=generator, device=dev) - 1) * (1 - w)
    cy = (2 * torch.rand(n, generator=generator, device=dev) - 1) * (1 - h)
    sign = torch.where(_coin(n, flip_p, generator, dev), -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    shape = list(x.shape) if not out_size else [n, x.shape[1], out_size, out_size]
    grid = F.affine_grid(theta, shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x01):
    return (0.299 * x01[:, 0:1] + 0.587 * x01[:, 1:2] + 0.114 * x01[:, 2:3])


def _yiq_matrices(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB -> YIQ and its inverse on `device`; built and inverted on the host (on a GPU both would make the
    host wait)."""
    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=dtype)
    return _host_constant(yiq, device), _host_constant(torch.linalg.inv(yiq), device)


def color_jitter(x01, brightness, contrast, saturation, hue, generator=None, yiq=None):
    """Colour jitter on images in [0, 1]; hue rotates chroma in YIQ space (cheap, batched).

    `yiq`: the (matrix, inverse) pair already on x01's device (SSLAugment keeps them: a CUDA graph cannot
    capture their copy from the host); built here when None."""
    n, dev = x01.shape[0], x01.device
    v = lambda a: _u(n, max(0.0, 1 - a), 1 + a, generator, dev).view(n, 1, 1, 1)  # noqa: E731
    x01 = x01 * v(brightness)
    m = _gray(x01).mean(dim=(1, 2, 3), keepdim=True)
    x01 = (x01 - m) * v(contrast) + m
    g = _gray(x01)
    x01 = (x01 - g) * v(saturation) + g
    if hue > 0:
        ang = _u(n, -hue, hue, generator, dev) * 2 * math.pi
        yiq, yiq_inv = yiq if yiq is not None else _yiq_matrices(dev, x01.dtype)
        q = torch.einsum("ij,njhw->nihw", yiq, x01)
        c, s = torch.cos(ang).view(n, 1, 1), torch.sin(ang).view(n, 1, 1)
        i2 = c * q[:, 1] - s * q[:, 2]
        q2 = s * q[:, 1] + c * q[:, 2]
        q = torch.stack([q[:, 0], i2, q2], 1)
        x01 = torch.einsum("ij,njhw->nihw", yiq_inv, q)
    return x01.clamp(0, 1)


def _host_constant(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor on `device`; onto a GPU through pinned memory, so the host does not wait for it."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def gaussian_blur(x, sigma, sigma_max: float | None = None):
    """Blur each image with its own sigma (pixels): separable grouped convolution.

    The kernel spans +-2 sigma of the batch's largest sigma, or of `sigma_max` when given (a bound known on
    the host: reading the batch's maximum from a GPU would make the host wait for it every call).
    """
    n, c, h, w = x.shape
    k = 2 * int(math.ceil(2 * (float(sigma.max()) if sigma_max is None else sigma_max))) + 1
    k = min(k, 2 * (min(h, w) // 2) - 1)
    t = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    ker = torch.exp(-0.5 * (t[None] / sigma[:, None]) ** 2)
    ker = (ker / ker.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [n*c, k]
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (k // 2, k // 2, 0, 0), mode="reflect"), ker.view(n * c, 1, 1, k), groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), ker.view(n * c, 1, k, 1), groups=n * c)
    return y.view(n, c, h, w)


class SSLAugment:
    """One random view per call: `view = SSLAugment(cfg)(x, generator)`; x in [-1, 1]."""

    def __init__(self, config: AugmentConfig | dict | None = None):
        self.config = config if isinstance(config, AugmentConfig) else AugmentConfig.from_dict(config)
        self._yiq: dict = {}  # (device, dtype) -> the colour jitter's YIQ matrices there

    def _yiq_on(self, device: torch.device, dtype: torch.dtype):
        key = (device, dtype)
        if key not in self._yiq:
            self._yiq[key] = _yiq_matrices(device, dtype)
        return self._yiq[key]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        cfg, g = self.config, generator
        n, dev = x.shape[0], x.device
        x = random_resized_crop(x, cfg.crop_scale, cfg.crop_ratio, cfg.flip_p, g, cfg.out_size)
        x01 = (x + 1) / 2
        if cfg.jitter_p > 0:
            sel = _coin(n, cfg.jitter_p, g, dev).view(n, 1, 1, 1)
            j = color_jitter(x01, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, g,
                             yiq=self._yiq_on(dev, x01.dtype) if cfg.hue > 0 else None)
            x01 = torch.where(sel, j, x01)
        if cfg.gray_p > 0:
            sel = _coin(n, cfg.gray_p, g, dev).view(n, 1, 1, 1)
            x01 = torch.where(sel, _gray(x01).expand_as(x01), x01)
        if cfg.blur_p > 0:
            scale = x.shape[-1] / 32
            sigma = _u(n, cfg.blur_sigma[0] * scale, cfg.blur_sigma[1] * scale, g, dev)
            sel = _coin(n, cfg.blur_p, g, dev).view(n, 1, 1, 1)
            bound = cfg.blur_sigma[1] * scale if dev.type == "cuda" else None  # CPU: the batch's own maximum
            x01 = torch.where(sel, gaussian_blur(x01, sigma, sigma_max=bound), x01)
        if cfg.solarize_p > 0:
            sel = _coin(n, cfg.solarize_p, g, dev).view(n, 1, 1, 1)
            x01 = torch.where(sel & (x01 >= 0.5), 1 - x01, x01)
        x = x01 * 2 - 1
        if cfg.noise_std > 0 and cfg.noise_p > 0:
            sel = _coin(n, cfg.noise_p, g, dev).view(n, 1, 1, 1)
            noise = torch.randn(x.shape, generator=g, device=dev, dtype=x.dtype) * cfg.noise_std
            x = torch.where(sel, x + noise, x)
        return x
