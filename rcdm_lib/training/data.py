"""What the training loop draws batches from: images plus their conditioning.

Each source returns, for dataset indices and one torch.Generator per example, the images
x0 [B, C, H, W] in [-1, 1] and the model's keyword arguments. All randomness of an
example (which slot, null condition) comes from its own generator, so a batch depends
only on (seed, step, index): distributed runs and resumed runs see the same examples.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch

from rcdm_lib.conditioning import SlotLayout


def _as_float_images(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1.0
    return images.float()


class ImageSource:
    """Unconditional: images only. images: uint8 [N, C, H, W] or float in [-1, 1]."""

    def __init__(self, images: torch.Tensor):
        if images.dim() != 4:
            raise ValueError(f"images must be [N, C, H, W], got {list(images.shape)}")
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, indices: torch.Tensor, generators: list[torch.Generator]):
        return _as_float_images(self.images[indices]), {}

    def preview_kwargs(self, n: int) -> list[tuple[str, dict]]:
        return [("unconditional", {})]

    def describe(self) -> dict:
        return {"kind": "unconditional", "n": len(self), "image_shape": list(self.images.shape[1:])}


class SlotFeatureSource(ImageSource):
    """Images with precomputed representations per slot (the feature cache).

    features: slot name -> [N, d] (fp16 or fp32). Each example fills one slot, or with
    probability p_null none (the null condition). The slot is uniform, or drawn in proportion
    to `slot_weights` (slot name -> relative weight; slots not named weigh 1), e.g. to give
    the slots of a retrained encoder more of a warm-started run. A one-slot layout with
    p_null = 0 is the paper's single-representation model.
    """

    def __init__(self, images: torch.Tensor, features: Mapping[str, torch.Tensor], layout: SlotLayout,
                 p_null: float = 0.0, provenance: dict | None = None,
                 slot_weights: Mapping[str, float] | None = None):
        super().__init__(images)
        self.provenance = provenance or {}  # e.g. the sha256 of each encoder: a resume checks it
        layout = SlotLayout.from_any(layout)
        missing = [n for n in layout.names if n not in features]
        if missing:
            raise ValueError(f"features are missing slots {missing}; the layout has {layout.names}")
        for name, dim in layout.slots:
            f = features[name]
            if f.shape != (len(self), dim):
                raise ValueError(f"features[{name!r}] must be [{len(self)}, {dim}], got {list(f.shape)}")
        if not 0.0 <= p_null <= 1.0:
            raise ValueError(f"p_null must be in [0, 1], got {p_null}")
        self.features, self.layout, self.p_null = dict(features), layout, p_null
        self.slot_weights = dict(slot_weights) if slot_weights else None
        self._slot_cdf = None if self.slot_weights is None else _slot_cdf(layout.names, self.slot_weights)

    def batch(self, indices: torch.Tensor, generators: list[torch.Generator]):
        x0 = _as_float_images(self.images[indices])
        rep = self.layout.null(len(indices))
        names = self.layout.names
        for row, (i, g) in enumerate(zip(indices.tolist(), generators)):
            u_null, u_slot = torch.rand(2, generator=g).tolist()
            if u_null < self.p_null:
                continue
            if self._slot_cdf is None:
                name = names[min(int(u_slot * len(names)), len(names) - 1)]
            else:
                name = names[min(int(torch.searchsorted(self._slot_cdf, u_slot, right=True)), len(names) - 1)]
            start, end = self.layout.offset(name)
            rep[row, start:end] = self.features[name][i].float()
        return x0, {"rep": rep}

    def rep_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-dimension mean and std [D] of every slot's training features (for rep_standardise)."""
        means, stds = [], []
        for name in self.layout.names:
            f = self.features[name].float()  # [N, d_slot]
            means.append(f.mean(0))
            stds.append(f.std(0).clamp_min(1e-3))
        return torch.cat(means), torch.cat(stds)

    def preview_kwargs(self, n: int) -> list[tuple[str, dict]]:
        """The first n examples conditioned on each slot, and the null condition."""
        idx = torch.arange(min(n, len(self)))
        out = [(name, {"rep": self.layout.fill(name, self.features[name][idx].float())}) for name in self.layout.names]
        if self.p_null > 0:
            out.append(("null", {"rep": self.layout.null(len(idx))}))
        return out

    def describe(self) -> dict:
        out = {"kind": "slots", "n": len(self), "slots": [list(s) for s in self.layout.slots], "p_null": self.p_null}
        if self.slot_weights:
            out["slot_weights"] = self.slot_weights
        return {**out, **self.provenance}


def _slot_cdf(names: list[str], weights: Mapping[str, float]) -> torch.Tensor:
    """The cumulative slot probabilities [S] (float64) of relative weights; unnamed slots weigh 1."""
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"slot_weights names slots {unknown} that the layout does not have; expected some of {names}")
    w = torch.tensor([float(weights.get(n, 1.0)) for n in names], dtype=torch.float64)
    if (w < 0).any() or not torch.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"slot_weights must be finite, >= 0 and not all 0; got {dict(zip(names, w.tolist()))}")
    return torch.cumsum(w / w.sum(), 0)


class EncoderSource(ImageSource):
    """Conditioning computed online by a frozen encoder on each batch (one slot, no cache).

    encoder_view maps the RCDM images x0 [-1, 1] to the encoder's input (e.g. a resize);
    the identity by default.
    """

    def __init__(self, images: torch.Tensor, encoder: Callable, rep_dim: int,
                 encoder_view: Callable | None = None):
        super().__init__(images)
        self.encoder, self.rep_dim = encoder, rep_dim
        self.encoder_view = encoder_view or (lambda x: x)

    @torch.no_grad()
    def _encode(self, x0):
        h = self.encoder(self.encoder_view(x0))
        if h.shape != (x0.shape[0], self.rep_dim):
            raise ValueError(f"encoder must return [N, {self.rep_dim}], got {list(h.shape)}")
        return h.float()

    def batch(self, indices, generators):
        x0 = _as_float_images(self.images[indices])
        return x0, {"rep": self._encode(x0)}

    def preview_kwargs(self, n: int):
        x0 = _as_float_images(self.images[: min(n, len(self))])
        return [("encoder", {"rep": self._encode(x0)})]

    def describe(self) -> dict:
        return {"kind": "encoder", "n": len(self), "rep_dim": self.rep_dim}


class FeatureSource(ImageSource):
    """Images with one representation each, computed once (the feature cache): a single-representation RCDM on
    the built-in data, conditioned on any encoder. describe() carries the encoder's identity."""

    def __init__(self, images: torch.Tensor, features: torch.Tensor, encoder_spec: dict | None = None,
                 provenance: dict | None = None):
        super().__init__(images)
        if features.shape[0] != len(self) or features.dim() != 2:
            raise ValueError(f"features must be [{len(self)}, d], got {list(features.shape)}")
        self.features, self.rep_dim = features, int(features.shape[1])
        self.encoder_spec, self.provenance = dict(encoder_spec or {}), dict(provenance or {})

    def batch(self, indices, generators):
        return _as_float_images(self.images[indices]), {"rep": self.features[indices].float()}

    def rep_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features.float()
        return f.mean(0), f.std(0).clamp_min(1e-3)

    def preview_kwargs(self, n: int):
        return [("encoder", {"rep": self.features[: min(n, len(self))].float()})]

    def describe(self) -> dict:
        out = {"kind": "features", "n": len(self), "rep_dim": self.rep_dim, **self.provenance}
        if self.encoder_spec:   # the encoder's identity: a run refuses to pair the export with another encoder
            out["encoder"] = {k: self.encoder_spec.get(k) for k in ("name", "layer", "weights_sha256")}
        return out


FLIP_SALT = 0x5EED_F11B   # separates an example's flip from its other draws


class FolderPairSource:
    """Real data (an ImageFolder yielding the official preprocessing pair) with online encoding.

    dataset[i] -> ((rcdm_image [3, S, S], encoder_image [3, E, E]), label). Images are decoded
    by `threads` worker threads; the encoder runs on `device`. Used at imagenet128.
    """

    def __init__(self, dataset, encoder: Callable, rep_dim: int, device="cpu", threads: int = 8):
        self.dataset, self.encoder, self.rep_dim = dataset, encoder, rep_dim
        self.device, self.threads = torch.device(device), threads
        self._pool = None

    def __len__(self) -> int:
        return len(self.dataset)

    def _load(self, indices, flips=None):
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads)
        pair = self.dataset.transform
        flips = flips if flips is not None else [False] * len(indices)
        pairs = list(self._pool.map(lambda a: pair(self.dataset.load(int(a[0]))[0], flip=a[1]), zip(indices, flips)))
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def _flips(self, generators) -> list[bool]:
        """Each example's horizontal flip, from a generator seeded by its own (so the loop's draws of t and noise from
        the example's generator stay what they are): the same run draws the same flips, resumed or not."""
        if not getattr(self.dataset.transform, "random_flip", False):
            return [False] * len(generators)
        return [bool(torch.rand((), generator=torch.Generator().manual_seed(g.initial_seed() ^ FLIP_SALT)) < 0.5)
                for g in generators]

    @torch.no_grad()
    def _encode(self, enc_images):
        h = self.encoder(enc_images.to(self.device))
        if h.shape != (enc_images.shape[0], self.rep_dim):
            raise ValueError(f"encoder must return [N, {self.rep_dim}], got {list(h.shape)}")
        return h.float()

    def batch(self, indices, generators):
        x0, enc = self._load(indices.tolist() if torch.is_tensor(indices) else indices, self._flips(generators))
        return x0, {"rep": self._encode(enc)}

    def preview_kwargs(self, n: int):
        _, enc = self._load(list(range(min(n, len(self)))))
        return [("encoder", {"rep": self._encode(enc)})]

    def describe(self) -> dict:
        spec = getattr(self.dataset, "spec", None)
        out = {"kind": "folder", "n": len(self), "rep_dim": self.rep_dim, "dataset": spec}
        enc = getattr(self.encoder, "spec", None)
        if enc:   # the encoder's identity: a run refuses to pair the export with another encoder
            out["encoder"] = {k: enc.get(k) for k in ("name", "layer", "weights_sha256")}
        return out
