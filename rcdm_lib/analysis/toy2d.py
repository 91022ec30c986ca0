"""The methods at a glance on a 2-D problem (paper Fig. 11), with real trajectories.

The data is a mixture of Gaussians in the plane (`Mixture2D.ring`: K clusters on a circle).
The "encoder" is a known function that throws information away: the direction
h(x) = x / |x| keeps the angle and discards the radius, so the points with a given
representation h* form the ray {r h* : r > 0}. Three ways to get an input for h*:

- representation matching (the inversion baselines): gradient descent on x to make h(x) = h*
  (`match_representation`). It lands on the ray, wherever its start projects, on the data or not.
- unconditional diffusion: the reverse process of a diffusion model of the data lands on the
  data, with any representation.
- RCDM: the same diffusion conditioned on h*: it lands on the data *and* on the ray.

No network is trained: for a mixture of Gaussians the optimal denoiser is known in closed
form. With x_t = sqrt(abar) x0 + sqrt(1 - abar) eps and components N(mu_k, Sigma_k) of weight
w_k, x_t given component k is N(sqrt(abar) mu_k, C_k) with C_k = abar Sigma_k + (1 - abar) I, and

    E[x0 | x_t] = sum_k gamma_k(x_t) (mu_k + sqrt(abar) Sigma_k C_k^-1 (x_t - sqrt(abar) mu_k)),
    gamma_k(x_t) proportional to w_k N(x_t; sqrt(abar) mu_k, C_k),
    eps_hat = (x_t - sqrt(abar) E[x0 | x_t]) / sqrt(1 - abar).

RCDM's target, the data restricted to the points with representation h*, is again a mixture:
each component restricted to the ray is a 1-D Gaussian along h* (a rank-1 covariance), so the
conditional denoiser is the same formula (`Mixture2D.restrict_to_rays`). `ExactDenoiser` is
that model as rcdm_lib.diffusion calls a network: model(x_t, t, rep=None) -> eps_hat, where
rep [N, 2] is h* and a zero row is the null condition (the unconditional model), as in the
slot RCDM.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


def direction(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The toy representation h(x) = x / |x|: [N, 2] -> [N, 2] (keeps the angle, drops the radius)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


@dataclass
class Mixture2D:
    """Mixture of Gaussians in the plane: weights [..., K] (sum 1), means [..., K, 2], covs [..., K, 2, 2].

    Leading dimensions (a batch of mixtures, one per conditioning vector) broadcast in the
    denoiser; `sample`, `log_prob` and `nearest_component` need an unbatched mixture with
    full-rank covariances for the latter two.
    """
    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def __post_init__(self):
        k = self.weights.shape[-1]
        if self.means.shape[-2:] != (k, 2) or self.covs.shape[-3:] != (k, 2, 2):
            raise ValueError(f"a mixture of {k} components needs means [..., {k}, 2] and covs [..., {k}, 2, 2]; "
                             f"got {list(self.means.shape)} and {list(self.covs.shape)}")

    @classmethod
    def ring(cls, k: int = 8, radius: float = 2.0, std: float = 0.15, weights=None,
             dtype=torch.float64) -> "Mixture2D":
        """K isotropic clusters of standard deviation `std` evenly spaced on a circle of `radius`."""
        if k < 1:
            raise ValueError(f"a ring needs at least one cluster, got k={k}")
        ang = torch.arange(k, dtype=dtype) * (2 * math.pi / k)
        means = radius * torch.stack([ang.cos(), ang.sin()], 1)
        w = torch.full((k,), 1.0 / k, dtype=dtype) if weights is None else torch.as_tensor(weights, dtype=dtype)
        if w.shape != (k,) or (w < 0).any():
            raise ValueError(f"weights must be {k} non-negative numbers, got {list(w.shape)}")
        covs = (std ** 2) * torch.eye(2, dtype=dtype).expand(k, 2, 2).clone()
        return cls(w / w.sum(), means, covs)

    @property
    def num_components(self) -> int:
        return self.weights.shape[-1]

    def _unbatched(self, what: str) -> None:
        if self.weights.dim() != 1:
            raise ValueError(f"{what} needs one mixture (weights [K]); this one is batched {list(self.weights.shape)}")

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n points [n, 2] and their component indices [n]."""
        self._unbatched("sample")
        comp = torch.multinomial(self.weights.float(), n, replacement=True, generator=generator)
        z = torch.randn(n, 2, generator=generator, dtype=self.means.dtype)
        # a PSD square root that also works for rank-1 (restricted) covariances
        evals, evecs = torch.linalg.eigh(self.covs)
        root = evecs @ torch.diag_embed(evals.clamp_min(0).sqrt()) @ evecs.transpose(-1, -2)
        return self.means[comp] + (root[comp] @ z.unsqueeze(-1)).squeeze(-1), comp

    def _mahalanobis2(self, x: torch.Tensor) -> torch.Tensor:
        d = x.to(self.means.dtype).unsqueeze(1) - self.means.unsqueeze(0)               # [N, K, 2]
        return (d.unsqueeze(-2) @ torch.linalg.inv(self.covs) @ d.unsqueeze(-1)).squeeze(-1).squeeze(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) of points [N, 2] -> [N] (full-rank covariances)."""
        self._unbatched("log_prob")
        logdet = torch.linalg.slogdet(self.covs).logabsdet
        comp = -0.5 * (self._mahalanobis2(x) + logdet + 2 * math.log(2 * math.pi))
        return torch.logsumexp(comp + self.weights.log(), dim=1)

    def nearest_component(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For points [N, 2]: the component of smallest Mahalanobis distance [N] and that distance [N]."""
        self._unbatched("nearest_component")
        d2 = self._mahalanobis2(x)
        m, k = d2.min(1)
        return k, m.sqrt()

    def restrict_to_rays(self, u: torch.Tensor) -> "Mixture2D":
        """The mixture restricted to the rays {r u_n : r > 0}, one per unit direction u [N, 2].

        Along the line x = r u, component N(mu, Sigma) is, as a function of r, a Gaussian of
        precision a = u^T Sigma^-1 u and mean m = u^T Sigma^-1 mu / a, with mass
        |Sigma|^-1/2 (2 pi a)^-1/2 exp(-(mu^T Sigma^-1 mu - a m^2) / 2); on the ray r > 0 that
        mass is multiplied by Phi(m sqrt(a)). Each restricted component is kept as the Gaussian
        N(m u, u u^T / a) (rank 1), which is exact up to its mass at r < 0, negligible for
        clusters away from the origin such as the ring's. Needs full-rank covariances.
        """
        self._unbatched("restrict_to_rays")
        u = direction(u.to(self.means.dtype))                                           # [N, 2]
        prec = torch.linalg.inv(self.covs)                                              # [K, 2, 2]
        pu = torch.einsum("kij,nj->nki", prec, u)                                       # Sigma^-1 u  [N, K, 2]
        a = (pu * u.unsqueeze(1)).sum(-1)                                               # [N, K]
        m = (pu * self.means.unsqueeze(0)).sum(-1) / a                                  # [N, K]
        quad = torch.einsum("ki,kij,kj->k", self.means, prec, self.means)               # [K]
        logdet = torch.linalg.slogdet(self.covs).logabsdet
        log_mass = (-0.5 * logdet - 0.5 * torch.log(2 * math.pi * a) - 0.5 * (quad - a * m ** 2)
                    + torch.special.log_ndtr(m * a.sqrt()))
        logw = self.weights.log() + log_mass
        w = torch.softmax(logw, dim=1)
        means = m.unsqueeze(-1) * u.unsqueeze(1)                                        # [N, K, 2]
        covs = (u.unsqueeze(-1) * u.unsqueeze(-2)).unsqueeze(1) / a.unsqueeze(-1).unsqueeze(-1)
        return Mixture2D(w, means, covs)


def posterior_mean(mixture: Mixture2D, x_t: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """E[x0 | x_t] under x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, x0 ~ mixture.

    x_t [N, 2]; abar [N] (or a number) in (0, 1); the mixture may be batched over N.
    """
    dt = mixture.means.dtype
    x = x_t.to(dt)
    ab = torch.as_tensor(abar, dtype=dt).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)
    if ((ab <= 0) | (ab >= 1)).any():
        raise ValueError("abar must lie in (0, 1): the posterior needs some signal and some noise")
    eye = torch.eye(2, dtype=dt)
    c = ab * mixture.covs + (1 - ab) * eye                                              # [N, K, 2, 2]
    c_inv = torch.linalg.inv(c)
    mu_t = ab.sqrt().squeeze(-1) * mixture.means                                        # [N, K, 2]
    d = (x.unsqueeze(1) - mu_t).unsqueeze(-1)                                           # [N, K, 2, 1]
    maha = (d.transpose(-1, -2) @ c_inv @ d).reshape(d.shape[0], -1)                    # [N, K]
    logit = mixture.weights.log() - 0.5 * maha - 0.5 * torch.linalg.slogdet(c).logabsdet
    gamma = torch.softmax(logit, dim=1)                                                 # [N, K]
    x0_k = mixture.means + ab.sqrt().squeeze(-1) * (mixture.covs @ c_inv @ d).squeeze(-1)
    return (gamma.unsqueeze(-1) * x0_k).sum(1)


class ExactDenoiser:
    """The optimal epsilon predictor of a mixture, called like a network: model(x_t, t, rep=None).

    t: the *original* timesteps [N] (as rcdm_lib.diffusion calls the model); alphas_cumprod:
    the full (unrespaced) process's, float64 [T]. rep [N, 2]: condition on h(x) = rep (RCDM);
    zero rows, or rep=None, are the null condition (the unconditional model).
    """

    def __init__(self, mixture: Mixture2D, alphas_cumprod):
        self.mixture = mixture
        self.alphas_cumprod = torch.as_tensor(np.asarray(alphas_cumprod), dtype=torch.float64)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, rep: torch.Tensor | None = None) -> torch.Tensor:
        if x_t.dim() != 2 or x_t.shape[1] != 2:
            raise ValueError(f"the 2-D denoiser expects points [N, 2], got {list(x_t.shape)}")
        ab = self.alphas_cumprod[t.cpu()]
        mix = self.mixture
        if rep is not None:
            rep = rep.to(mix.means.dtype)
            cond = rep.norm(dim=1) > 0
            r = mix.restrict_to_rays(torch.where(cond.unsqueeze(1), rep, torch.ones_like(rep)))
            k = mix.num_components
            keep = cond.view(-1, 1)
            mix = Mixture2D(torch.where(keep, r.weights, mix.weights.expand(len(rep), k)),
                            torch.where(keep.unsqueeze(-1), r.means, mix.means.expand(len(rep), k, 2)),
                            torch.where(keep.unsqueeze(-1).unsqueeze(-1), r.covs, mix.covs.expand(len(rep), k, 2, 2)))
        x = x_t.to(torch.float64)
        x0 = posterior_mean(mix, x, ab)
        ab = ab.unsqueeze(1)
        return ((x - ab.sqrt() * x0) / (1 - ab).sqrt()).to(x_t.dtype)


def diffusion_trajectories(diffusion, model: Callable, x_T: torch.Tensor, model_kwargs: dict | None = None,
                           generator: torch.Generator | None = None, sampler: str = "ancestral") -> torch.Tensor:
    """Reverse-process trajectories from x_T [N, 2]: [steps + 1, N, 2] (x_T first, x_0 last).

    sampler: "ancestral" (DDPM: a fresh noise draw at every step) or "ddim" (eta = 0: the
    deterministic path that x_T alone decides, ending in the same distribution).
    """
    if sampler == "ancestral":
        steps = diffusion.p_sample_loop_progressive(model, tuple(x_T.shape), noise=x_T, clip_denoised=False,
                                                    model_kwargs=model_kwargs, generator=generator)
    elif sampler == "ddim":
        steps = diffusion.ddim_sample_loop_progressive(model, tuple(x_T.shape), noise=x_T, eta=0.0,
                                                       clip_denoised=False, model_kwargs=model_kwargs)
    else:
        raise ValueError(f"sampler must be 'ancestral' or 'ddim', got {sampler!r}")
    return torch.stack([x_T] + [out["sample"] for out in steps])


def match_representation(encoder: Callable, h_target: torch.Tensor, x_init: torch.Tensor, steps: int = 200,
                         lr: float = 0.1) -> torch.Tensor:
    """Gradient descent on x of L(x) = |encoder(x) - h_target|^2 / 2 from x_init [N, d]:
    the trajectory [steps + 1, N, d]. h_target: [N, r] or [r] (shared)."""
    if steps < 0 or lr <= 0:
        raise ValueError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
    x = x_init.detach().clone()
    traj = [x.clone()]
    for _ in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            loss = 0.5 * ((encoder(x) - h_target) ** 2).sum()
            (g,) = torch.autograd.grad(loss, x)
        x = (x - lr * g).detach()
        traj.append(x.clone())
    return torch.stack(traj)


def angle_error(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Angle in radians between h(x) = x / |x| and the unit direction(s) h: [N, 2] -> [N]."""
    cos = (direction(x) * direction(h.to(x.dtype))).sum(-1).clamp(-1, 1)
    return torch.arccos(cos)
