"""The hinge loss of BigGAN and IC-GAN (Lim & Ye 2017; Miyato et al. 2018).

    L_D = E[max(0, 1 - D(x, h))] + E[max(0, 1 + D(G(z, h'), h'))]
    L_G = -E[D(G(z, h'), h')]
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Discriminator hinge loss: scores d_real [N], d_fake [M] -> (loss_real, loss_fake), each a mean."""
    return F.relu(1.0 - d_real).mean(), F.relu(1.0 + d_fake).mean()


def hinge_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -mean D(G(z, h), h)."""
    return -d_fake.mean()
