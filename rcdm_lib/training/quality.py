"""The quality bar of a trained built-in-data RCDM: do samples keep the conditioning image's shape?

A shape classifier trained on real images at the RCDM resolution reads the shape of each
sample; agreement with the conditioning image's shape, per representation slot, is the
number. Unconditional (null-slot) samples are scored by how often the classifier is as
confident on them as on real images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rcdm_lib.training.sources import resize_images


def train_shape_classifier(profile: dict, image_size: int, cache_dir, steps: int = 600, train_length: int = 20000,
                           log=print):
    """A tiny supervised ResNet on real train images resized to `image_size`; cached by its spec."""
    from rcdm_lib.data import FactorShapes
    from rcdm_lib.encoders import load_tiny_encoder, save_tiny_encoder
    from rcdm_lib.encoders.training import EncoderTrainConfig, train_tiny_encoder

    data = profile["data"]
    path = Path(cache_dir) / f"shape_classifier_{data['size']}to{image_size}_n{train_length}_s{steps}_seed{data['seed']}.safetensors"
    if path.is_file():
        return load_tiny_encoder(path).eval()
    ds = FactorShapes("train", size=data["size"], length=train_length, seed=data["seed"])
    images, factors = ds.all_uint8()
    images = resize_images(images, image_size)
    model_cfg = {**(profile.get("encoders", {}).get("model") or {}), "stem_stride": 1}
    cfg = EncoderTrainConfig(method="supervised", steps=steps, batch_size=256, seed=data["seed"], model=model_cfg)
    model, _ = train_tiny_encoder(images, factors["shape"], cfg, progress=False, log=log)
    save_tiny_encoder(model, path)
    return model.eval()


@torch.no_grad()
def classify(clf, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Class probabilities [N, K] for images [N, 3, S, S] in [-1, 1]."""
    out = [torch.softmax(clf(images[s:s + batch_size]).float(), dim=1) for s in range(0, len(images), batch_size)]
    return torch.cat(out)


def neighbour_agreement(query: torch.Tensor, query_labels: torch.Tensor, bank: torch.Tensor,
                        bank_labels: torch.Tensor, k: int = 10) -> float:
    """Fraction of the k nearest bank rows of each query [M, D] (Euclidean, after standardising every
    dimension by the bank's statistics, as the RCDM sees its conditioning) sharing the query's label.

    The reference for shape agreement: a model that can only resolve a representation up to its
    neighbourhood draws images whose shapes mix like these neighbours' do.
    """
    from rcdm_lib.metrics.neighbours import knn, knn_label_agreement

    if query.shape[1] != bank.shape[1]:
        raise ValueError(f"query has {query.shape[1]} dimensions, the bank {bank.shape[1]}")
    mu, sd = bank.float().mean(0), bank.float().std(0).clamp_min(1e-3)
    _, idx = knn((query.float() - mu) / sd, (bank.float() - mu) / sd, k=k)
    return knn_label_agreement(query_labels.long(), bank_labels.long(), idx).mean().item()


def shape_agreement(models, clf, n_images: int = 100, n_per: int = 2, steps: int = 50, seed: int = 0,
                    slots=None, guidance_scale=None, n_reference: int = 5000, k: int = 10,
                    split: str = "val") -> dict:
    """Per slot: the fraction of RCDM samples classified as the conditioning image's shape.

    Also the classifier's accuracy on the real val images (at the RCDM resolution) and, for
    the null condition, the fraction of samples classified with confidence >= 0.9 next to the
    same fraction for real images. split="train" conditions on the first n_images training images
    instead of val ones (whether the network does better on what it was trained on). agreement_se: the standard error of each agreement over
    the images (each image's n_per samples averaged first). With n_reference > 0, per slot also the neighbour agreement
    of the same val images among n_reference train images: how shape-pure the representation's
    neighbourhoods are, a reference for the samples that depends on the encoder only.
    """
    from rcdm_lib.data import FactorShapes

    if split not in ("val", "train"):
        raise ValueError(f"split must be 'val' or 'train', got {split!r}")
    data = (models.settings if hasattr(models, "settings") else models.profile)["data"]   # a Run or ProfileModels
    ds = FactorShapes(split, size=data["size"], length=max(n_images, 1), seed=data["seed"])
    images, factors = ds.batch(np.arange(n_images))
    shape = factors["shape"].long()
    real = classify(clf, models.rcdm_view(images))
    out = {"split": split, "n_images": n_images, "n_per": n_per, "sampling_steps": steps, "sampler": "ancestral", "guidance_scale": guidance_scale,
           "classifier_val_accuracy": (real.argmax(1) == shape).float().mean().item(),
           "real_confident_fraction": (real.max(1).values >= 0.9).float().mean().item(), "agreement": {},
           "agreement_se": {}}
    if n_reference:
        ref_images, ref_factors = FactorShapes("train", size=data["size"], length=n_reference,
                                               seed=data["seed"]).batch(np.arange(n_reference))
        out.update(neighbour_k=k, n_reference=n_reference, neighbour_agreement={})
    for slot in slots or models.slots:
        h = models.encode(slot, images)
        if n_reference:
            out["neighbour_agreement"][slot] = neighbour_agreement(
                h, shape, models.encode(slot, ref_images), ref_factors["shape"], k=k)
        x = models.sample(slot, h, n_per=n_per, steps=steps, seed=seed, guidance_scale=guidance_scale)
        p = classify(clf, x.flatten(0, 1))
        hit = (p.argmax(1) == shape.repeat_interleave(n_per)).float().view(n_images, n_per)  # [N, n_per]
        out["agreement"][slot] = hit.mean().item()
        # standard error over images (an image's samples are not independent of each other)
        out["agreement_se"][slot] = (hit.mean(1).std() / n_images ** 0.5).item() if n_images > 1 else None
    null = models.sample(None, n=n_images, n_per=1, steps=steps, seed=seed).flatten(0, 1)
    out["null_confident_fraction"] = (classify(clf, null).max(1).values >= 0.9).float().mean().item()
    return out
