"""Factor probes: read the known factors of the built-in data off any image, real or sampled.

A probe is fitted on real images with their true factors (multinomial logistic regression for
categorical factors, ridge regression for continuous ones, on standardised features) and then
applied to RCDM samples. Comparing what it reads on a sample with what it reads on the
conditioning image says which factors the representation kept: the "factor table", which turns
the paper's Fig. 4 and Fig. 27 into numbers. Chance level is the agreement with the conditioning
factors of a random other image (a permutation), so it accounts for unbalanced factors.

    probe = FactorProbe(pixel_features).fit(real_images, real_factors)
    pred = probe.predict(samples)               # {factor: [M]}
    agree = factor_agreement(pred, probe.predict(cond_images), FACTORS)
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

# A continuous factor "agrees" when the two readings differ by less than this fraction of the
# factor's range (e.g. 0.15 x 90 degrees = 13.5 degrees of rotation).
DEFAULT_TOLERANCE = 0.15


def pixel_features(images: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Raw pixels (optionally resized to `size`) plus 2x2-pooled pixels: [N x 3 x H x W] -> [N x F]."""
    x = images.float()
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    pooled = F.avg_pool2d(x, 2) if x.shape[-1] >= 4 else x
    return torch.cat([x.flatten(1), pooled.flatten(1)], 1)


def _standardiser(x: torch.Tensor):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    return mu, sd


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float = 1e-3,
                 max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS (deterministic) -> (W [F x C], b [C])."""
    w = torch.zeros(x.shape[1], num_classes, dtype=x.dtype, requires_grad=True)
    b = torch.zeros(num_classes, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def fit_ridge(x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form ridge regression (x standardised) -> (w [F], intercept)."""
    x64, y64 = x.double(), y.double()
    ym = y64.mean()
    a = x64.t() @ x64 + alpha * torch.eye(x64.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(a, x64.t() @ (y64 - ym))
    return w.float(), ym.float()


class FactorProbe:
    """Per-factor linear read-outs over a fixed featuriser (pixels by default).

    featurize: images [N, 3, H, W] in [-1, 1] -> [N, F]. factors: the data's Factor list
    (rcdm_lib.data.FACTORS). Categorical predictions are class indices, continuous ones values.
    """

    def __init__(self, featurize: Callable = pixel_features, factors=None, weight_decay: float = 1e-3,
                 ridge_alpha: float = 10.0, max_iter: int = 200):
        if factors is None:
            from rcdm_lib.data import FACTORS as factors
        self.featurize, self.factors = featurize, tuple(factors)
        self.weight_decay, self.ridge_alpha, self.max_iter = weight_decay, ridge_alpha, max_iter
        self.heads: dict[str, tuple] = {}
        self._std = None

    @torch.no_grad()
    def _features(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        return torch.cat([self.featurize(images[s:s + batch_size]).float()
                          for s in range(0, images.shape[0], batch_size)])

    def fit(self, images: torch.Tensor, factors: dict) -> "FactorProbe":
        """Fit every head on real images [N x 3 x H x W] and their true factors {name: [N]}."""
        x = self._features(images)
        mu, sd = _standardiser(x)
        self._std = (mu, sd)
        x = (x - mu) / sd
        for f in self.factors:
            y = torch.as_tensor(factors[f.name])
            if f.kind == "categorical":
                with torch.enable_grad():
                    self.heads[f.name] = fit_logistic(x, y.long(), f.num_classes, self.weight_decay, self.max_iter)
            else:
                self.heads[f.name] = fit_ridge(x, y.float(), self.ridge_alpha)
        return self

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """{factor: [N]} read off images [N x 3 x H x W] (any leading shape [..., 3, H, W] is flattened)."""
        if self._std is None:
            raise RuntimeError("FactorProbe.predict called before fit; fit it on real images first")
        lead = images.shape[:-3]
        x = (self._features(images.reshape(-1, *images.shape[-3:])) - self._std[0]) / self._std[1]
        out = {}
        for f in self.factors:
            w, b = self.heads[f.name]
            p = (x @ w + b).argmax(1) if f.kind == "categorical" else x @ w + b
            out[f.name] = p.reshape(lead)
        return out

    @torch.no_grad()
    def score(self, images: torch.Tensor, factors: dict) -> dict[str, dict]:
        """Accuracy (categorical) or R^2 (continuous) on held-out real images: the reader's ceiling."""
        return reading_scores(self.predict(images), factors, self.factors)


def reading_scores(pred: dict, truth: dict, factors) -> dict[str, dict]:
    """How well readings pred {name: [N]} match the truth {name: [N]}: {name: {"metric", "value"}}, accuracy for a
    categorical factor, R^2 for a continuous one."""
    out = {}
    for f in factors:
        y, p = torch.as_tensor(truth[f.name]), pred[f.name]
        if f.kind == "categorical":
            out[f.name] = {"metric": "accuracy", "value": float((p.long() == y.long()).float().mean())}
        else:
            y = y.double()
            r2 = 1 - ((y - p.double()) ** 2).sum() / ((y - y.mean()) ** 2).sum()
            out[f.name] = {"metric": "r2", "value": float(r2)}
    return out


def factor_agreement(pred: dict, ref: dict, factors, tolerance: float = DEFAULT_TOLERANCE) -> dict[str, torch.Tensor]:
    """Per-item agreement (bool) of factor readings: pred {name: [N, ...]} vs ref {name: [N]}.

    ref broadcasts over pred's trailing axes (e.g. ref [N] against K samples per condition
    pred [N, K]). Categorical: equal class; continuous: |difference| <= tolerance x range.
    """
    out = {}
    for f in factors:
        p, r = pred[f.name], torch.as_tensor(ref[f.name])
        r = r.reshape(r.shape + (1,) * (p.dim() - r.dim()))
        if f.kind == "categorical":
            out[f.name] = p.long() == r.long()
        else:
            lo, hi = f.values
            out[f.name] = (p.double() - r.double()).abs() <= tolerance * (hi - lo)
    return out


def chance_agreement(pred: dict, ref: dict, factors, tolerance: float = DEFAULT_TOLERANCE,
                     permutations: int = 20, seed: int = 0) -> dict[str, float]:
    """Agreement of pred with the references of random other conditions (ref rows permuted)."""
    g = torch.Generator().manual_seed(seed)
    n = next(iter(pred.values())).shape[0]
    acc = {f.name: 0.0 for f in factors}
    for _ in range(permutations):
        perm = torch.randperm(n, generator=g)
        a = factor_agreement(pred, {k: torch.as_tensor(v)[perm] for k, v in ref.items()}, factors, tolerance)
        for k, v in a.items():
            acc[k] += float(v.float().mean()) / permutations
    return acc


def agreement_table(pred: dict, ref: dict, factors, tolerance: float = DEFAULT_TOLERANCE,
                    permutations: int = 20, seed: int = 0) -> dict[str, dict]:
    """{factor: {"kept": fraction of samples agreeing with their condition, "chance": permuted}}."""
    kept = factor_agreement(pred, ref, factors, tolerance)
    chance = chance_agreement(pred, ref, factors, tolerance, permutations, seed)
    return {f.name: {"kept": float(kept[f.name].float().mean()), "chance": chance[f.name]} for f in factors}
