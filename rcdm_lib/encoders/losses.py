"""Training objectives of the encoders: supervised cross-entropy and the SSL losses.

Each follows its paper's reference implementation:
SimCLR NT-Xent (Chen et al. 2020), Barlow Twins (Zbontar et al. 2021, lambda 5e-3),
VICReg (Bardes et al. 2022, coefficients 25/25/1), DINO (Caron et al. 2021: teacher centering
and sharpening, student temperature 0.1, EMA teacher).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def supervised_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent over 2N views: each view's positive is its pair, the 2N-2 others are negatives."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))
    # made on the device: a host tensor copied over would make the host wait (and cannot be graph-captured)
    target = torch.cat([torch.arange(n, 2 * n, device=z.device), torch.arange(0, n, device=z.device)])
    return F.cross_entropy(sim, target)


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    d = m.shape[0]
    return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3, eps: float = 1e-5) -> torch.Tensor:
    """sum_i (1 - C_ii)^2 + lambd * sum_{i!=j} C_ij^2, C the batch cross-correlation of standardised z."""
    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
    c = a.t() @ b / n
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = _off_diagonal(c).pow(2).sum()
    return on + lambd * off


def vicreg_loss(z1, z2, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0,
                eps: float = 1e-4) -> torch.Tensor:
    """Invariance (MSE) + variance (hinge on per-dim std at 1) + covariance (off-diagonal^2 / D)."""
    n, d = z1.shape
    repr_loss = F.mse_loss(z1, z2)
    a, b = z1 - z1.mean(0), z2 - z2.mean(0)
    std_a, std_b = torch.sqrt(a.var(0) + eps), torch.sqrt(b.var(0) + eps)
    std_loss = F.relu(1 - std_a).mean() / 2 + F.relu(1 - std_b).mean() / 2
    cov_a, cov_b = a.t() @ a / (n - 1), b.t() @ b / (n - 1)
    cov_loss = _off_diagonal(cov_a).pow(2).sum() / d + _off_diagonal(cov_b).pow(2).sum() / d
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


class DINOLoss(nn.Module):
    """Cross-entropy between the centred, sharpened teacher and the student, over view pairs.

    `forward(student_out, teacher_out)`: lists of [N x K] logits, one per view; the teacher sees
    only the global views (the first len(teacher_out) of the student's). Pairs of the same view
    are skipped. The centre is an EMA of the teacher's batch mean (updated after each call).
    """

    def __init__(self, out_dim: int, teacher_temp: float = 0.04, student_temp: float = 0.1,
                 center_momentum: float = 0.9):
        super().__init__()
        self.teacher_temp, self.student_temp, self.center_momentum = teacher_temp, student_temp, center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student_out: list[torch.Tensor], teacher_out: list[torch.Tensor]) -> torch.Tensor:
        t_probs = [F.softmax((t.detach() - self.center) / self.teacher_temp, dim=-1) for t in teacher_out]
        s_logp = [F.log_softmax(s / self.student_temp, dim=-1) for s in student_out]
        total, terms = 0.0, 0
        for i, q in enumerate(t_probs):
            for j, lp in enumerate(s_logp):
                if i == j:
                    continue
                total = total + torch.sum(-q * lp, dim=-1).mean()
                terms += 1
        self.update_center(torch.cat([t.detach() for t in teacher_out]))
        return total / terms

    @torch.no_grad()
    def update_center(self, teacher_logits: torch.Tensor) -> None:
        self.center.mul_(self.center_momentum).add_(teacher_logits.mean(0, keepdim=True), alpha=1 - self.center_momentum)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float | torch.Tensor) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student (parameters; buffers copied).

    `momentum` a float, or a 0-d device tensor (a CUDA graph reads the per-step rate from it)."""
    t_params = list(teacher.parameters())
    s_params = [p.detach() for p in student.parameters()]
    # multi-tensor kernels: the same operations per parameter, a few launches in all on a GPU
    if torch.is_tensor(momentum):  # m * (t - s) + s: the rate only as a factor
        torch._foreach_sub_(t_params, s_params)
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, s_params)
    else:
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, s_params, alpha=1 - momentum)
    for bt, bs in zip(teacher.buffers(), student.buffers()):
        bt.copy_(bs)
