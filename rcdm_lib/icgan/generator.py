"""The IC-GAN generator: BigGAN conditioned on an instance representation h (Casanova et al. 2021).

    G = Generator(ICGANConfig(image_size=16, rep_dim=128))
    x = G(z, h)                                # z [N, dim_z], h [N, rep_dim] -> [N, 3, 16, 16] in [-1, 1]
    x = sample_icgan(G, h, n_per=4, seed=0)    # [N, 4, 3, 16, 16]

Module names follow BigGAN-PyTorch (`shared_feat`, `linear`, `blocks.i.0`, `output_layer`), so
the official 128px IC-GAN generator loads into the same class (rcdm_lib/icgan/official.py).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rcdm_lib.icgan.config import ICGANConfig
from rcdm_lib.icgan.layers import Attention, BatchNorm, GBlock, SNConv2d, SNLinear, StoredStatsNorm


def orthogonal_init(module: nn.Module) -> None:
    """BigGAN's G_init/D_init "ortho" for every conv, linear and embedding weight."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight)


def check_rep(h: torch.Tensor, rep_dim: int, n: int | None = None) -> None:
    if h.dim() != 2 or h.shape[1] != rep_dim or (n is not None and h.shape[0] != n):
        want = f"[{n if n is not None else 'N'}, {rep_dim}]"
        raise ValueError(f"representations h must be {want}, got {list(h.shape)}")


class Generator(nn.Module):
    """G(z, h) -> images [N, 3, S, S] in [-1, 1] (tanh output)."""

    def __init__(self, config: ICGANConfig):
        super().__init__()
        self.config = c = config
        if c.n_classes:   # present in the official file although IC-GAN does not use classes
            self.shared = nn.Embedding(c.n_classes, c.shared_dim or c.dim_z)
        self.shared_feat = SNLinear(c.rep_dim, c.shared_dim_feat, eps=c.sn_eps)
        chans = [c.g_ch * m for m in c.g_ch_mult]
        self.linear = SNLinear(c.z_chunk if c.hier else c.dim_z, chans[0] * c.bottom_width ** 2, eps=c.sn_eps)
        blocks, res = [], c.bottom_width
        for cin, cout in zip(chans[:-1], chans[1:]):
            res *= 2
            block = [GBlock(cin, cout, c.cond_size, c.bn_eps, c.sn_eps)]
            if res in c.g_attention:
                block.append(Attention(cout, c.sn_eps))
            blocks.append(nn.ModuleList(block))
        self.blocks = nn.ModuleList(blocks)
        self.output_layer = nn.Sequential(BatchNorm(chans[-1], c.bn_eps), nn.ReLU(),
                                          SNConv2d(chans[-1], 3, eps=c.sn_eps))
        orthogonal_init(self)

    @property
    def dim_z(self) -> int:
        return self.config.dim_z

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        """h [N, rep_dim] -> the instance embedding [N, shared_dim_feat] (h L2-normalised first)."""
        check_rep(h, self.config.rep_dim)
        if self.config.normalize_rep:
            h = F.normalize(h.float(), dim=1)
        return self.shared_feat(h)

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        c = self.config
        if z.dim() != 2 or z.shape[1] != c.dim_z or z.shape[0] != h.shape[0]:
            raise ValueError(f"z must be [N, {c.dim_z}] with N = {h.shape[0]} (the rows of h), got {list(z.shape)}")
        y = self.embed(h)                                           # [N, shared_dim_feat]
        if c.hier:
            zs = z.split(c.z_chunk, dim=1)
            z0, ys = zs[0], [torch.cat([y, zi], 1) for zi in zs[1:]]
        else:
            z0, ys = z, [y] * len(self.blocks)
        x = self.linear(z0).view(z.shape[0], -1, c.bottom_width, c.bottom_width)
        for blocklist, yi in zip(self.blocks, ys):
            for block in blocklist:
                x = block(x, yi)
        return torch.tanh(self.output_layer(x))                     # [N, 3, S, S]


@torch.no_grad()
def sample_icgan(G: Generator, h: torch.Tensor, n_per: int = 1, seed: int | None = 0, z_std: float = 1.0,
                 batch_size: int = 256) -> torch.Tensor:
    """n_per samples for each representation: h [N, rep_dim] -> [N, n_per, 3, S, S] in [-1, 1].

    G is run as it is (call .eval() for the stored batch-norm statistics, as IC-GAN samples);
    z ~ N(0, z_std^2) from `seed` (z_std < 1 is BigGAN's truncation-like variance).
    """
    check_rep(h, G.config.rep_dim)
    device = next(G.parameters()).device
    n = h.shape[0]
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n * n_per, G.dim_z, generator=gen) * z_std
    hh = h.float().repeat_interleave(n_per, dim=0)
    out = torch.cat([G(z[s:s + batch_size].to(device), hh[s:s + batch_size].to(device)).cpu()
                     for s in range(0, n * n_per, batch_size)])
    return out.view(n, n_per, *out.shape[1:])


@torch.no_grad()
def standing_statistics(G: Generator, reps: torch.Tensor, n_batches: int = 16, batch_size: int = 64,
                        seed: int = 0) -> Generator:
    """Recompute every batch-norm's stored mean/var as the average over n_batches of G's
    own batches (BigGAN's "standing stats"), conditioned on rows of reps [M, rep_dim].

    The EMA generator's weights never produced the running statistics it inherits from G, so
    its eval-mode samples use these instead."""
    norms = [m for m in G.modules() if isinstance(m, StoredStatsNorm)]
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    was_training = G.training
    G.train()
    sn_state = {k: v.clone() for k, v in G.state_dict().items() if k.endswith(("u0", "sv0"))}
    for m in norms:
        m.stored_mean.zero_()
        m.stored_var.zero_()
    for k in range(n_batches):
        for m in norms:
            m.momentum = 1.0 / (k + 1)        # cumulative average over the batches
        idx = torch.randint(reps.shape[0], (batch_size,), generator=gen)
        z = torch.randn(batch_size, G.dim_z, generator=gen)
        G(z.to(device), reps[idx].float().to(device))
    for m in norms:
        m.momentum = 0.1
    G.load_state_dict({**G.state_dict(), **sn_state})   # spectral-norm vectors stay as trained
    G.train(was_training)
    return G
