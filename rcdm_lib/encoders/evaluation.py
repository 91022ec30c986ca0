"""Reading factors off representations: embeddings, k-NN accuracy and linear probes.

A linear probe is multinomial logistic regression (categorical factors; accuracy) or ridge
regression (continuous factors; R^2) on standardised features, fitted on one split and scored
on another. These numbers are how the book says what a representation keeps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def embed(fn, images: torch.Tensor, batch_size: int = 512, device="cpu") -> torch.Tensor:
    """fn(float images in [-1, 1]) for uint8 or float `images` [N x 3 x H x W] -> [N x D] float32 cpu."""
    outs = []
    for s in range(0, images.shape[0], batch_size):
        x = images[s : s + batch_size]
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1
        outs.append(fn(x.to(device)).float().cpu())
    return torch.cat(outs)


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 20) -> float:
    """Cosine-similarity k-NN majority vote (ties -> lowest label)."""
    a, b = F.normalize(train_x.float(), dim=1), F.normalize(test_x.float(), dim=1)
    correct = 0
    n_cls = int(max(train_y.max(), test_y.max())) + 1
    for s in range(0, b.shape[0], 1024):
        sim = b[s : s + 1024] @ a.t()
        idx = sim.topk(min(k, a.shape[0]), dim=1).indices
        votes = F.one_hot(train_y[idx], n_cls).sum(1)
        correct += int((votes.argmax(1) == test_y[s : s + 1024]).sum())
    return correct / b.shape[0]


def _standardise(train_x, test_x):
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    return (train_x - mu) / sd, (test_x - mu) / sd


def linear_probe_accuracy(train_x, train_y, test_x, test_y, epochs: int = 100, lr: float = 0.05,
                          weight_decay: float = 1e-4, seed: int = 0) -> float:
    """Multinomial logistic regression, full-batch L-BFGS-free Adam (deterministic), test accuracy."""
    tr, te = _standardise(train_x.float(), test_x.float())
    n_cls = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(tr.shape[1], n_cls, requires_grad=True)
    b = torch.zeros(n_cls, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    bs = 1024
    for _ in range(epochs):
        perm = torch.randperm(tr.shape[0], generator=g)
        for s in range(0, tr.shape[0], bs):
            i = perm[s : s + bs]
            loss = F.cross_entropy(tr[i] @ w + b, train_y[i]) + weight_decay * (w * w).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float(((te @ w + b).argmax(1) == test_y).float().mean())


def ridge_probe_r2(train_x, train_y, test_x, test_y, alpha: float = 1.0) -> float:
    """Closed-form ridge regression on standardised features; R^2 on the test split."""
    tr, te = _standardise(train_x.double(), test_x.double())
    ym = train_y.double().mean()
    a = tr.t() @ tr + alpha * torch.eye(tr.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(a, tr.t() @ (train_y.double() - ym))
    pred = te @ w + ym
    ss_res = ((test_y.double() - pred) ** 2).sum()
    ss_tot = ((test_y.double() - test_y.double().mean()) ** 2).sum()
    return float(1 - ss_res / ss_tot)


def probe_factors(train_feats, train_factors: dict, test_feats, test_factors: dict, factors,
                  epochs: int = 100) -> dict[str, dict]:
    """{factor: {"metric": "accuracy"|"r2", "value": float}} for every factor in `factors` (FACTORS)."""
    out = {}
    for f in factors:
        ytr, yte = train_factors[f.name], test_factors[f.name]
        if f.kind == "categorical":
            out[f.name] = {"metric": "accuracy", "value": linear_probe_accuracy(train_feats, ytr.long(), test_feats, yte.long(), epochs=epochs)}
        else:
            out[f.name] = {"metric": "r2", "value": ridge_probe_r2(train_feats, ytr, test_feats, yte)}
    return out
