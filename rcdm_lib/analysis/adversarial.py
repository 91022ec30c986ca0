"""Adversarial examples seen through RCDM (paper Fig. 5, 30): targeted FGSM on a linear probe.

A linear probe (multinomial logistic regression, `LinearProbe`) is fitted on an encoder's
training representations to read the class (the shape, on the built-in data). The fast
gradient sign method (Goodfellow et al. 2015) then perturbs an image x in [-1, 1] toward a
target class y_target in one step of size epsilon per pixel:

    x_adv = clip(x - epsilon * sign(grad_x CE(probe(encoder(x)), y_target)), -1, 1)

Sign convention: this is the *targeted* attack, so the step goes *down* the cross-entropy of
the target class (the untargeted attack would go up the loss of the true class, with +).
epsilon is in the units of the [-1, 1] image range (epsilon = 2/255 in [0, 1] units is
4/255 here). The gradient is taken once, at the clean image, as in FGSM; a sweep over
epsilons moves along that one sign direction.

The *flip epsilon* of an image is the smallest epsilon of the sweep at which the probe
predicts the target class (targeted success; `flip_epsilon`); inf when it never does within
the sweep. `first_epsilon` gives the same for any per-epsilon event, e.g. "the prediction
left the true class". RCDM conditioned on the perturbed image's representation shows what the
encoder "sees" in the adversarial image.

    probe = LinearProbe.fit(train_reps, train_labels, num_classes=12)
    sweep = fgsm_sweep(encoder, probe, images, target, torch.linspace(0, 0.3, 31))
    sweep.predictions            # [E, N]
    sweep.flip_epsilon           # [N], inf where the target was never reached
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from rcdm_lib.metrics.factor_probe import fit_logistic

IMAGE_RANGE = (-1.0, 1.0)


@dataclass
class LinearProbe:
    """logits = ((h - mean) / std) @ weight + bias; differentiable in h.

    mean, std: [D] (standardisation of the training representations); weight [D, C]; bias [C].
    """
    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def fit(cls, reps: torch.Tensor, labels: torch.Tensor, num_classes: int, weight_decay: float = 1e-3,
            max_iter: int = 200) -> "LinearProbe":
        """Fit on training representations reps [N, D] with class labels [N] in [0, num_classes)."""
        if reps.dim() != 2:
            raise ValueError(f"reps must be [N, D], got {list(reps.shape)}")
        labels = torch.as_tensor(labels).long().reshape(-1)
        if labels.shape[0] != reps.shape[0]:
            raise ValueError(f"{reps.shape[0]} representations but {labels.shape[0]} labels; expected one label each")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        x = reps.detach().float().cpu()
        mean, std = x.mean(0), x.std(0) + 1e-6
        with torch.enable_grad():
            w, b = fit_logistic((x - mean) / std, labels.cpu(), num_classes, weight_decay, max_iter)
        return cls(mean, std, w, b)

    @property
    def num_classes(self) -> int:
        return self.weight.shape[1]

    def to(self, device=None, dtype=None) -> "LinearProbe":
        return LinearProbe(*(t.to(device=device, dtype=dtype) for t in (self.mean, self.std, self.weight, self.bias)))

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        """Logits [N, C] of representations h [N, D]."""
        if h.dim() != 2 or h.shape[1] != self.mean.shape[0]:
            raise ValueError(f"the probe expects representations [N, {self.mean.shape[0]}], got {list(h.shape)}")
        return ((h - self.mean) / self.std) @ self.weight + self.bias

    @torch.no_grad()
    def predict(self, h: torch.Tensor) -> torch.Tensor:
        """Predicted class [N] of representations h [N, D]."""
        return self(h).argmax(1)


def _classifier(encoder: Callable, probe: Callable) -> Callable:
    return lambda x: probe(encoder(x))


def _check_images(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W] in [-1, 1], got {list(images.shape)}")
    target = torch.as_tensor(target, device=images.device).long().reshape(-1)
    if target.numel() == 1:
        target = target.expand(images.shape[0])
    if target.shape[0] != images.shape[0]:
        raise ValueError(f"target must be one class or one per image ({images.shape[0]}), got {target.shape[0]}")
    return target


def target_gradient_sign(classifier: Callable, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sign(grad_x CE(classifier(x), target)) at x = images [N, C, H, W] -> [N, C, H, W] in {-1, 0, 1}.

    classifier: images -> logits [N, K], differentiable (e.g. probe(encoder(x))). The loss is
    summed over the batch, so each image's gradient is its own.
    """
    target = _check_images(images, target)
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(classifier(x), target, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad.sign()


def fgsm_targeted(classifier: Callable, images: torch.Tensor, target: torch.Tensor, epsilon: float) -> torch.Tensor:
    """One targeted FGSM step: clip(x - epsilon * sign(grad_x CE(classifier(x), target)), -1, 1).

    images [N, C, H, W] in [-1, 1]; target: one class index or [N]; epsilon >= 0 in [-1, 1] units.
    """
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0 (the step goes toward the target class), got {epsilon}")
    step = target_gradient_sign(classifier, images, target)
    return (images.detach() - epsilon * step).clamp(*IMAGE_RANGE)


def first_epsilon(epsilons: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    """Smallest epsilon at which `hit` holds: epsilons [E] (ascending), hit bool [E, N] -> [N]; inf if never."""
    epsilons = torch.as_tensor(epsilons, dtype=torch.float64)
    if hit.dim() != 2 or hit.shape[0] != epsilons.shape[0]:
        raise ValueError(f"hit must be [E={epsilons.shape[0]}, N], got {list(hit.shape)}")
    if (epsilons[1:] < epsilons[:-1]).any():
        raise ValueError("epsilons must be in ascending order")
    big = torch.full(hit.shape, float("inf"), dtype=torch.float64)
    return torch.where(hit.cpu(), epsilons.unsqueeze(1).expand(hit.shape), big).min(0).values


def flip_epsilon(epsilons: torch.Tensor, predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted flip epsilon: the smallest epsilon at which predictions [E, N] equal target [N] (or one class)."""
    target = torch.as_tensor(target).long().reshape(1, -1).to(predictions.device)
    return first_epsilon(epsilons, predictions == target)


@dataclass
class FGSMSweep:
    epsilons: torch.Tensor      # [E], ascending, [-1, 1] image units
    images: torch.Tensor        # [E, N, C, H, W] perturbed images (images[0] is x itself when epsilons[0] = 0)
    predictions: torch.Tensor   # [E, N] probe predictions
    target: torch.Tensor        # [N]
    flip_epsilon: torch.Tensor  # [N] smallest epsilon predicting the target; inf if none

    def summary(self, labels: torch.Tensor | None = None) -> dict[str, float]:
        """Median flip epsilon (inf if half the images never flip), fraction flipped at the largest
        epsilon and, with true labels [N], the median epsilon at which the prediction leaves them."""
        out = {"median_flip_epsilon": float(self.flip_epsilon.median()) if self.flip_epsilon.numel() else float("nan"),
               "flipped_at_max": float(torch.isfinite(self.flip_epsilon).double().mean())}
        if labels is not None:
            leave = first_epsilon(self.epsilons, self.predictions != torch.as_tensor(labels).reshape(1, -1).to(
                self.predictions.device))
            out["median_leave_epsilon"] = float(leave.median())
        return out


def fgsm_sweep(encoder: Callable, probe: LinearProbe, images: torch.Tensor, target: torch.Tensor,
               epsilons, batch_size: int = 256) -> FGSMSweep:
    """Targeted FGSM of images [N, C, H, W] in [-1, 1] at each of `epsilons` (one gradient per image).

    encoder: differentiable images -> [N, D] on the images' device (a FrozenEncoder); probe: its
    LinearProbe (moved to that device here).
    """
    epsilons = torch.as_tensor(epsilons, dtype=torch.float32).reshape(-1)
    if (epsilons < 0).any():
        raise ValueError(f"epsilons must be >= 0, got min {float(epsilons.min())}")
    epsilons = epsilons.sort().values
    target = _check_images(images, target)
    probe = probe.to(images.device)
    clf = _classifier(encoder, probe)
    sign = torch.cat([target_gradient_sign(clf, images[s:s + batch_size], target[s:s + batch_size])
                      for s in range(0, images.shape[0], batch_size)])
    eps = epsilons.to(images.device).view(-1, 1, 1, 1, 1)
    adv = (images.detach().unsqueeze(0) - eps * sign.unsqueeze(0)).clamp(*IMAGE_RANGE)   # [E, N, C, H, W]
    with torch.no_grad():
        flat = adv.flatten(0, 1)
        preds = torch.cat([clf(flat[s:s + batch_size]).argmax(1) for s in range(0, flat.shape[0], batch_size)])
    preds = preds.view(len(epsilons), images.shape[0]).cpu()
    target = target.cpu()
    return FGSMSweep(epsilons=epsilons, images=adv.cpu(), predictions=preds, target=target,
                     flip_epsilon=flip_epsilon(epsilons, preds, target))
