"""Inversion by gradient descent (paper Fig. 7, 9): find an input whose representation is h.

Starting from a random Gaussian image, the input is optimised so that the encoder's output
matches a target representation, as in the paper: Adam on the L2 distance, or L-BFGS on the
cosine distance. The paper reports relative distances ||f(x) - h|| / ||h|| of 0.4%, 0.1%,
3.6% and 3.3% after 10,000 iterations (Dino and Dino+n ResNet-50s, ImageNet), and inputs that
do not look like natural images: matching a representation is easy, producing an image from
it is what RCDM adds.

    res = invert(encoder, h, optimizer="adam", iterations=500, image_size=32)
    res.images            # [N, 3, 32, 32] in [-1, 1]
    res.rel_distance      # [iterations + 1, N]: row t is ||f(x_t) - h|| / ||h||

The input range. Our encoders take images in [-1, 1]; an unconstrained optimiser can leave
that range and "match" h with pixel values no image has. So by default the input is
parametrised as x = tanh(z) (`parametrization="tanh"`), which keeps every iterate a valid
image without projections (L-BFGS needs a smooth, unconstrained problem). With
`parametrization="none"` the input is free, as an unconstrained reading of the paper; the
returned images are then not clamped, so what the optimiser found is what is returned.

The encoder runs in eval mode during the optimisation (BatchNorm uses its running
statistics, so each image is inverted independently of the others in the batch); a module
passed in training mode is switched to eval and switched back afterwards.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

# The paper's pairings (Fig. 7 caption): Adam on the L2 distance, L-BFGS on the cosine distance.
OPTIMIZERS = {"adam": "l2", "lbfgs": "cosine"}
DISTANCES = ("l2", "cosine")
PARAMETRIZATIONS = ("tanh", "none")
DEFAULT_LR = {"adam": 0.05, "lbfgs": 1.0}
_EDGE = 1 - 1e-3     # atanh(+-1) is infinite: a start image is clipped to this before z = atanh(x)


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Run `module` in eval mode (BatchNorm running statistics), restoring each submodule's mode after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode


@dataclass
class Inversion:
    """The result of `invert`; tensors on the CPU, distances in float64."""
    images: torch.Tensor            # [N, C, H, W]: the inverted inputs
    start: torch.Tensor             # [N, C, H, W]: the random Gaussian start
    rel_distance: torch.Tensor      # [T + 1, N]: ||f(x_t) - h|| / ||h|| after t iterations
    cosine_distance: torch.Tensor   # [T + 1, N]: 1 - cos(f(x_t), h)
    optimizer: str
    distance: str
    parametrization: str
    evaluations: int = 0            # encoder forward+backward passes (L-BFGS line searches add some)
    stopped_at: int | None = None   # L-BFGS: the iteration at which the iterate stopped moving
    settings: dict = field(default_factory=dict)

    @property
    def final_rel_distance(self) -> torch.Tensor:
        """[N]: the relative L2 distance reached."""
        return self.rel_distance[-1]


def representation_distance(h: torch.Tensor, target: torch.Tensor, distance: str) -> torch.Tensor:
    """Per-example objective [N] for representations h, target [N, D]: the squared L2 distance
    relative to ||target||^2 ("l2"; minimising it minimises the L2 distance, and the ratio makes
    the step sizes comparable across encoders), or 1 - cosine similarity ("cosine")."""
    if distance == "l2":
        return ((h - target) ** 2).sum(1) / (target ** 2).sum(1).clamp_min(1e-12)
    if distance == "cosine":
        return 1 - F.cosine_similarity(h, target, dim=1)
    raise ValueError(f"unknown distance {distance!r}; expected one of {DISTANCES}")


def _distances(h: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h, target = h.detach().double(), target.double()
    rel = (h - target).norm(dim=1) / target.norm(dim=1).clamp_min(1e-12)
    return rel.cpu(), (1 - F.cosine_similarity(h, target, dim=1)).cpu()


def gaussian_start(n: int, image_size: int, channels: int = 3, std: float = 0.5, generator: torch.Generator | None = None,
                   device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random Gaussian image [n, channels, S, S], N(0, std^2) per pixel, clipped to [-1, 1]."""
    x = torch.randn(n, channels, image_size, image_size, generator=generator, dtype=torch.float32) * std
    return x.clamp(-1, 1).to(device=device, dtype=dtype)


def invert(encoder: nn.Module, target: torch.Tensor, optimizer: str = "adam", distance: str | None = None,
           iterations: int = 1000, lr: float | None = None, start: torch.Tensor | None = None,
           image_size: int | None = None, init_std: float = 0.5, parametrization: str = "tanh",
           generator: torch.Generator | None = None, device: str | torch.device | None = None,
           dtype: torch.dtype = torch.float32, lr_decay: str | None = "cosine", progress: bool = False,
           desc: str | None = None) -> Inversion:
    """Optimise inputs x [N, C, H, W] so that encoder(x) matches target [N, D].

    optimizer: "adam" or "lbfgs" (torch.optim.LBFGS, strong-Wolfe line search, one L-BFGS
    iteration per step); distance: "l2" or "cosine" (default: the paper's pairing, Adam+L2,
    L-BFGS+cosine); lr: the step size (default 0.05 for Adam, 1.0 for L-BFGS); start: the
    initial images in [-1, 1], else `gaussian_start(N, image_size, std=init_std)`;
    parametrization: "tanh" (x = tanh(z), every iterate in [-1, 1]) or "none"; lr_decay:
    "cosine" anneals Adam's step to zero over the iterations, None keeps it constant.
    Every iteration is one optimiser step; the trajectory records the distance at each one.
    L-BFGS stops early once a step leaves the iterate unchanged (a fixed point; `stopped_at`),
    and the trajectory keeps the final distance for the remaining iterations.
    """
    from tqdm.auto import tqdm

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
    distance = distance or OPTIMIZERS[optimizer]
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; expected one of {DISTANCES}")
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"unknown parametrization {parametrization!r}; expected one of {PARAMETRIZATIONS}")
    if lr_decay not in (None, "cosine"):
        raise ValueError(f"unknown lr_decay {lr_decay!r}; expected 'cosine' or None")
    if target.ndim != 2:
        raise ValueError(f"target must be representations [N, D]; got shape {tuple(target.shape)}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0; got {iterations}")
    device = torch.device(device) if device is not None else target.device
    n = target.shape[0]
    if start is None:
        if image_size is None:
            raise ValueError("invert needs the encoder's input size: pass image_size=E (or start images [N, C, E, E])")
        start = gaussian_start(n, image_size, std=init_std, generator=generator, device=device, dtype=dtype)
    if start.ndim != 4 or start.shape[0] != n:
        raise ValueError(f"start must be images [N, C, H, W] with N = {n} (one per target); got shape {tuple(start.shape)}")
    start = start.to(device=device, dtype=dtype)
    target = target.detach().to(device=device, dtype=dtype)
    lr = DEFAULT_LR[optimizer] if lr is None else float(lr)

    if parametrization == "tanh":
        z = torch.atanh(start.clamp(-_EDGE, _EDGE)).clone().requires_grad_(True)
        to_image = torch.tanh
    else:
        z = start.clone().requires_grad_(True)
        to_image = lambda z: z  # noqa: E731
    scheduler = None
    if optimizer == "adam":
        opt = torch.optim.Adam([z], lr=lr)
        if lr_decay == "cosine" and iterations > 0:
            # with a constant step Adam ends up circling the minimum (the distance then
            # oscillates); annealing the step to zero lets the last iterations settle
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=iterations)
    else:
        # LBFGS's own stopping tests are off (tolerances 0): the budget is a number of iterations,
        # as in the paper; the loop below stops only at a fixed point
        opt = torch.optim.LBFGS([z], lr=lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=0.0, tolerance_change=0.0)

    rel, cos = [], []
    evals = 0
    stopped_at = None
    first = [True]

    def closure():
        # Called once per Adam step, one or more times per L-BFGS step (the line search); the
        # first call of each step is at the current iterate, which is what the trajectory records.
        nonlocal evals
        h = encoder(to_image(z))                                  # [N, D]
        if h.shape != target.shape:
            raise ValueError(f"the encoder returns representations of shape {tuple(h.shape)} but the target has "
                             f"shape {tuple(target.shape)}; pass the target of this encoder and layer")
        loss = representation_distance(h, target, distance).sum()
        (z.grad,) = torch.autograd.grad(loss, z)                 # no gradients into the encoder's weights
        evals += 1
        if first[0]:
            r, c = _distances(h, target)
            rel.append(r)
            cos.append(c)
            first[0] = False
        return loss

    with eval_mode(encoder):
        bar = tqdm(range(iterations), desc=desc or f"inversion {optimizer}/{distance}", disable=not progress,
                   leave=False)
        for t in bar:
            first[0] = True
            z_prev = z.detach().clone() if optimizer == "lbfgs" else None
            opt.step(closure)
            if scheduler is not None:
                scheduler.step()
            if progress:
                bar.set_postfix(rel_distance=f"{float(rel[-1].mean()):.4f}")
            if z_prev is not None and t > 0 and torch.equal(z_prev, z.detach()):
                # L-BFGS at a fixed point: a step that does not move the iterate leaves its
                # history unchanged, so every later step would repeat it; stop and pad below.
                # Not the first step, whose length is 1/||g||_1 (PyTorch's LBFGS): with a large
                # gradient it can round to no move, and the second step, of length lr, moves.
                stopped_at = t
                break
        bar.close()
        with torch.no_grad():
            x = to_image(z).detach()
            r, c = _distances(encoder(x), target)
        rel += [r] * (iterations + 1 - len(rel))          # the iterate stays at x after an early stop
        cos += [c] * (iterations + 1 - len(cos))
    return Inversion(images=x.cpu(), start=start.detach().cpu(), rel_distance=torch.stack(rel),
                     cosine_distance=torch.stack(cos), optimizer=optimizer, distance=distance,
                     parametrization=parametrization, evaluations=evals, stopped_at=stopped_at,
                     settings={"iterations": iterations, "lr": lr, "lr_decay": lr_decay, "init_std": init_std})
