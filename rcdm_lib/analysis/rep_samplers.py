"""Representation samplers: RCDM as an unconditional generator (paper Fig. 21, Table 2a "KDE*").

RCDM needs a representation to sample from. Two ways to invent one without an image:
- GaussianNoiseSampler: a random training representation plus isotropic Gaussian noise (Fig. 21).
- KDESampler: a Gaussian kernel density estimate of the training representations (the
  "KDE*" rows), with the kernel covariance bandwidth^2 x the data covariance, as
  scipy.stats.gaussian_kde (bandwidth "scott": n^(-1/(d+4)), "silverman", or a number).

    h = KDESampler(train_reps).sample(64, generator=torch.Generator().manual_seed(0))
    x = models.sample(slot, h, n_per=1)
"""
from __future__ import annotations

import math

import torch


def _check_reps(reps: torch.Tensor) -> torch.Tensor:
    reps = torch.as_tensor(reps)
    if reps.dim() != 2 or reps.shape[0] < 2:
        raise ValueError(f"training representations must be [N, D] with N >= 2; got {list(reps.shape)}")
    return reps.double()


class GaussianNoiseSampler:
    """h = h_train[random i] + std * N(0, I); with relative=True, std is in units of the
    training representations' RMS per-dimension standard deviation."""

    def __init__(self, train_reps: torch.Tensor, std: float = 0.5, relative: bool = True):
        self.reps = _check_reps(train_reps)
        scale = float(self.reps.std(0).pow(2).mean().sqrt()) if relative else 1.0
        self.std = float(std) * scale

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[n x D] float32."""
        i = torch.randint(self.reps.shape[0], (n,), generator=generator)
        noise = torch.randn(n, self.reps.shape[1], generator=generator, dtype=torch.float64)
        return (self.reps[i] + self.std * noise).float()


class KDESampler:
    """Gaussian KDE over training representations [N x D]; kernel covariance = factor^2 x cov(reps)."""

    def __init__(self, train_reps: torch.Tensor, bandwidth: str | float = "scott", jitter: float = 1e-6):
        self.reps = _check_reps(train_reps)
        n, d = self.reps.shape
        if bandwidth == "scott":
            self.factor = n ** (-1.0 / (d + 4))
        elif bandwidth == "silverman":
            self.factor = (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
        elif isinstance(bandwidth, (int, float)):
            self.factor = float(bandwidth)
        else:
            raise ValueError(f"bandwidth must be 'scott', 'silverman' or a number; got {bandwidth!r}")
        cov = torch.cov(self.reps.t()).reshape(d, d)
        # a representation often lives in a subspace (e.g. ReLU features that are always 0):
        # the jitter keeps the kernel covariance invertible without changing its scale
        cov = cov + jitter * float(cov.diagonal().mean().clamp_min(1e-12)) * torch.eye(d, dtype=torch.float64)
        self.kernel_cov = cov * self.factor ** 2
        self._chol = torch.linalg.cholesky(self.kernel_cov)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[n x D] float32: a random training point plus kernel noise."""
        i = torch.randint(self.reps.shape[0], (n,), generator=generator)
        z = torch.randn(n, self.reps.shape[1], generator=generator, dtype=torch.float64)
        return (self.reps[i] + z @ self._chol.t()).float()

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) of the KDE at points x [M x D] -> [M] (float64)."""
        x = torch.as_tensor(x).double()
        n, d = self.reps.shape
        diff = x[:, None, :] - self.reps[None]                       # [M, N, D]
        sol = torch.cholesky_solve(diff.reshape(-1, d).t(), self._chol).t().reshape(diff.shape)
        maha = (diff * sol).sum(-1)                                   # [M, N]
        logdet = 2 * self._chol.diagonal().log().sum()
        log_norm = -0.5 * (d * math.log(2 * math.pi) + logdet)
        return torch.logsumexp(-0.5 * maha, dim=1) + log_norm - math.log(n)


def class_mean_representations(reps: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Mean representation per class (paper Fig. 29): reps [N x D], labels [N] -> [C x D].
    A class without examples raises, since its mean is undefined."""
    labels = torch.as_tensor(labels).long()
    c = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    counts = torch.bincount(labels, minlength=c)
    if (counts == 0).any():
        raise ValueError(f"classes {torch.nonzero(counts == 0).flatten().tolist()} have no examples; use more data")
    sums = torch.zeros(c, reps.shape[1], dtype=torch.float64).index_add_(0, labels, reps.double())
    return (sums / counts[:, None]).float()
