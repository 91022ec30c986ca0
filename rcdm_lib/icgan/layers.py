"""BigGAN layers (Brock et al. 2019) as IC-GAN uses them, with the official module and buffer names.

The names (`weight`, `u0`, `sv0`, `gain`, `bias`, `stored_mean`, `stored_var`, `gamma`) are
those of BigGAN-PyTorch's `layers.py` in facebookresearch/ic_gan, so an official generator
state dict loads strictly into our modules (rcdm_lib/icgan/official.py).

- Spectral norm: one power iteration per forward from the stored left singular vector `u0`;
  in training mode `u0` and the logged `sv0` are updated, in eval mode they are only read.
  The weight is divided by the estimated top singular value (gradient flows through it).
- ccbn: class-conditional batch norm, here conditioned on y = [embed(h), z_chunk]:
  out = BN(x) * (1 + gain(y)) + bias(y), gain and bias linear maps without bias.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class SpectralNorm:
    """Mixin: `self.weight` divided by its top singular value (power iteration, num_svs = 1)."""

    def _init_sn(self, num_outputs: int, eps: float) -> None:
        self.sn_eps = eps
        self.register_buffer("u0", torch.randn(1, num_outputs))
        self.register_buffer("sv0", torch.ones(1))

    def sn_weight(self) -> torch.Tensor:
        w = self.weight.view(self.weight.shape[0], -1)            # [out, in * k * k]
        with torch.no_grad():
            v = F.normalize(self.u0 @ w, eps=self.sn_eps)           # [1, in * k * k]
            u = F.normalize(v @ w.t(), eps=self.sn_eps)             # [1, out]
            if self.training:
                self.u0.copy_(u)
        sv = (v @ w.t() @ u.t()).squeeze()                          # differentiable in w
        if self.training:
            with torch.no_grad():
                self.sv0.copy_(sv.detach().reshape(1))
        return self.weight / sv


class SNLinear(nn.Linear, SpectralNorm):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, eps: float = 1e-6):
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_sn(out_features, eps)

    def forward(self, x):
        return F.linear(x, self.sn_weight(), self.bias)


class SNConv2d(nn.Conv2d, SpectralNorm):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1,
                 bias: bool = True, eps: float = 1e-6):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, padding=padding, bias=bias)
        self._init_sn(out_channels, eps)

    def forward(self, x):
        return F.conv2d(x, self.sn_weight(), self.bias, self.stride, self.padding)


class StoredStatsNorm(nn.Module):
    """Batch norm with BigGAN's buffer names: batch statistics in training mode (which update
    `stored_mean`/`stored_var` with `momentum`), the stored ones in eval mode.
    rcdm_lib.icgan.generator.standing_statistics sets `momentum` to average over batches."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps, self.momentum = eps, 0.1
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def _bn(self, x, weight=None, bias=None):
        return F.batch_norm(x, self.stored_mean, self.stored_var, weight, bias, self.training, self.momentum,
                            self.eps)


class ConditionalBatchNorm(StoredStatsNorm):
    """BigGAN's ccbn: x [N, C, H, W], y [N, input_size] -> BN(x) * (1 + gain(y)) + bias(y)."""

    def __init__(self, channels: int, input_size: int, bn_eps: float = 1e-5, sn_eps: float = 1e-6):
        super().__init__(channels, bn_eps)
        self.gain = SNLinear(input_size, channels, bias=False, eps=sn_eps)
        self.bias = SNLinear(input_size, channels, bias=False, eps=sn_eps)

    def forward(self, x, y):
        gain = (1 + self.gain(y)).view(y.shape[0], -1, 1, 1)
        bias = self.bias(y).view(y.shape[0], -1, 1, 1)
        return self._bn(x) * gain + bias


class BatchNorm(StoredStatsNorm):
    """BigGAN's unconditional `bn` (output layer): learned `gain` and `bias`."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__(channels, eps)
        self.gain = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, y=None):
        return self._bn(x, self.gain, self.bias)


class Attention(nn.Module):
    """SA-GAN self-attention as in BigGAN-PyTorch: x + gamma * o(softmax(theta^T phi) g)."""

    def __init__(self, ch: int, sn_eps: float = 1e-6):
        super().__init__()
        if ch % 8:
            raise ValueError(f"self-attention needs channels divisible by 8, got {ch}")
        self.ch = ch
        self.theta = SNConv2d(ch, ch // 8, 1, padding=0, bias=False, eps=sn_eps)
        self.phi = SNConv2d(ch, ch // 8, 1, padding=0, bias=False, eps=sn_eps)
        self.g = SNConv2d(ch, ch // 2, 1, padding=0, bias=False, eps=sn_eps)
        self.o = SNConv2d(ch // 2, ch, 1, padding=0, bias=False, eps=sn_eps)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x, y=None):
        n, c, h, w = x.shape
        theta = self.theta(x).view(n, c // 8, h * w)
        phi = F.max_pool2d(self.phi(x), 2).view(n, c // 8, h * w // 4)
        g = F.max_pool2d(self.g(x), 2).view(n, c // 2, h * w // 4)
        beta = F.softmax(theta.transpose(1, 2) @ phi, -1)                  # [N, HW, HW/4]
        o = self.o((g @ beta.transpose(1, 2)).view(n, c // 2, h, w))
        return x + self.gamma * o


class GBlock(nn.Module):
    """Generator residual block: BN-ReLU-up-conv-BN-ReLU-conv, plus an upsampled 1x1 shortcut."""

    def __init__(self, in_ch: int, out_ch: int, cond_size: int, bn_eps: float = 1e-5, sn_eps: float = 1e-6):
        super().__init__()
        self.conv1 = SNConv2d(in_ch, out_ch, eps=sn_eps)
        self.conv2 = SNConv2d(out_ch, out_ch, eps=sn_eps)
        self.conv_sc = SNConv2d(in_ch, out_ch, 1, padding=0, eps=sn_eps)   # always: every block upsamples
        self.bn1 = ConditionalBatchNorm(in_ch, cond_size, bn_eps, sn_eps)
        self.bn2 = ConditionalBatchNorm(out_ch, cond_size, bn_eps, sn_eps)

    def forward(self, x, y):
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    """Discriminator residual block ("wide" D): [ReLU]-conv-ReLU-conv-[avgpool] plus a 1x1 shortcut."""

    def __init__(self, in_ch: int, out_ch: int, preactivation: bool, downsample: bool, sn_eps: float = 1e-6):
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1 = SNConv2d(in_ch, out_ch, eps=sn_eps)
        self.conv2 = SNConv2d(out_ch, out_ch, eps=sn_eps)
        self.learnable_sc = in_ch != out_ch or downsample
        if self.learnable_sc:
            self.conv_sc = SNConv2d(in_ch, out_ch, 1, padding=0, eps=sn_eps)

    def shortcut(self, x):
        if self.preactivation:
            x = self.conv_sc(x) if self.learnable_sc else x
            return F.avg_pool2d(x, 2) if self.downsample else x
        x = F.avg_pool2d(x, 2) if self.downsample else x
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x):
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(x)
