"""Feature cache: the representations of a dataset split, computed once and stored in fp16.

The key is a SHA-256 over (encoder weights, encoder layer/spec, dataset spec, preprocessing
spec). The file name carries the key and the full key JSON is stored in the file's metadata;
a file is reused only if that JSON matches exactly and the row count is right, otherwise it
is recomputed and overwritten -- a stale entry is never silently reused.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn


def weights_hash(module: nn.Module) -> str:
    """SHA-256 over names, shapes, dtypes and bytes of every parameter and buffer."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cache_key(encoder: nn.Module, dataset_spec: dict, preprocess_spec: dict | str | None) -> dict:
    enc_spec = dict(getattr(encoder, "spec", {}) or {})
    enc_spec.pop("weights_sha256", None)  # file hash is not enough: weights may change in memory
    return {"encoder": enc_spec, "weights": weights_hash(encoder), "dataset": dataset_spec,
            "preprocess": preprocess_spec, "version": 1}


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


class FeatureCache:
    """`FeatureCache(dir).get(encoder, dataset_spec, batches, preprocess_spec)` -> [N x D] float32.

    `batches` is an iterable (or a zero-argument callable returning one) of float image batches
    already preprocessed for the encoder; it is consumed only on a miss.
    """

    def __init__(self, cache_dir: str | Path):
        self.dir = Path(cache_dir)

    def path_for(self, key: dict) -> Path:
        return self.dir / f"features-{key_digest(key)[:32]}.safetensors"

    def load(self, key: dict, expected_rows: int | None = None) -> torch.Tensor | None:
        from safetensors import safe_open

        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                feats = f.get_tensor("features")
        except Exception:
            return None
        if meta.get("key") != json.dumps(key, sort_keys=True, default=str):
            return None
        if expected_rows is not None and feats.shape[0] != expected_rows:
            return None
        return feats.float()

    def save(self, key: dict, feats: torch.Tensor) -> Path:
        from safetensors.torch import save_file

        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path_for(key)
        tmp = path.with_suffix(".tmp")
        save_file({"features": feats.detach().cpu().half().contiguous()}, str(tmp),
                  metadata={"key": json.dumps(key, sort_keys=True, default=str)})
        tmp.replace(path)
        return path

    @torch.no_grad()
    def get(self, encoder: nn.Module, dataset_spec: dict, batches: Callable | object,
            preprocess_spec: dict | str | None = None, expected_rows: int | None = None,
            device: str | torch.device = "cpu") -> torch.Tensor:
        key = cache_key(encoder, dataset_spec, preprocess_spec)
        rows = expected_rows if expected_rows is not None else dataset_spec.get("length", dataset_spec.get("n"))
        hit = self.load(key, rows)
        if hit is not None:
            return hit
        it = batches() if callable(batches) else batches
        feats = torch.cat([encoder(x.to(device)).float().cpu() for x in it])
        self.save(key, feats)
        return feats.half().float()  # the same values a later hit returns


def dataset_features(encoder: nn.Module, dataset, cache_dir: str | Path, batch_size: int = 512,
                     device: str | torch.device = "cpu", images: torch.Tensor | None = None) -> torch.Tensor:
    """Cached representations of a whole FactorShapes split, encoder input = the dataset image.

    images: the split already rendered (uint8 [N, 3, H, W], `dataset.all_uint8()`), so that
    several encoders over one split render it once; by default a miss renders it batch by batch.
    """
    import numpy as np

    if images is not None and (images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(dataset)):
        raise ValueError(f"images must be the split rendered as uint8 [{len(dataset)}, 3, H, W], "
                         f"got {images.dtype} {list(images.shape)}")

    def batches():
        for s in range(0, len(dataset), batch_size):
            if images is not None:
                yield images[s:s + batch_size].float() / 127.5 - 1.0  # = shapes.to_float of the same pixels
            else:
                x, _ = dataset.batch(np.arange(s, min(s + batch_size, len(dataset))))
                yield x

    return FeatureCache(cache_dir).get(encoder, dataset.spec, batches, {"preprocess": "native", "scale": "x/127.5-1"},
                                       expected_rows=len(dataset), device=device)
