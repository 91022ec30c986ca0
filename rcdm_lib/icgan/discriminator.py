"""The IC-GAN discriminator: a BigGAN projection discriminator conditioned on h (Miyato & Koyama 2018).

    D(x, h) = psi(phi(x)) + <embed(h), phi(x)>        -> [N]

phi(x) [N, C] is the sum over positions of the ReLU of the last residual block's features,
psi a linear map to one number (`linear`), embed a linear map of the (L2-normalised)
representation to C dims (`linear_feat`), all spectrally normalised, as in IC-GAN's BigGAN.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rcdm_lib.icgan.config import ICGANConfig
from rcdm_lib.icgan.generator import check_rep, orthogonal_init
from rcdm_lib.icgan.layers import Attention, DBlock, SNLinear


class Discriminator(nn.Module):
    def __init__(self, config: ICGANConfig):
        super().__init__()
        self.config = c = config
        chans = [c.d_ch * m for m in c.d_ch_mult]
        blocks, res, cin = [], c.image_size, 3
        for i, cout in enumerate(chans):
            down = i < len(chans) - 1
            res = res // 2 if down else res
            block = [DBlock(cin, cout, preactivation=i > 0, downsample=down, sn_eps=c.sn_eps)]
            if res in c.d_attention:
                block.append(Attention(cout, c.sn_eps))
            blocks.append(nn.ModuleList(block))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.linear = SNLinear(chans[-1], 1, eps=c.sn_eps)             # psi
        self.linear_feat = SNLinear(c.rep_dim, chans[-1], eps=c.sn_eps)  # embed(h)
        orthogonal_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): images [N, 3, S, S] -> [N, C] (ReLU, then sum over positions)."""
        c = self.config
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, c.image_size, c.image_size):
            raise ValueError(f"images must be [N, 3, {c.image_size}, {c.image_size}], got {list(x.shape)}")
        for blocklist in self.blocks:
            for block in blocklist:
                x = block(x)
        return F.relu(x).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """x [N, 3, S, S], h [N, rep_dim] -> D(x, h) [N] (a score, not a probability)."""
        check_rep(h, self.config.rep_dim, x.shape[0])
        if self.config.normalize_rep:
            h = F.normalize(h.float(), dim=1)
        phi = self.features(x)                                       # [N, C]
        return self.linear(phi)[:, 0] + (self.linear_feat(h) * phi).sum(1)
