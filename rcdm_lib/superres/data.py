"""Training and evaluation pairs for a super-resolution model: (high-res image, its low-res version).

The low-resolution image is made with the RCDM's own preprocessing
(`rcdm_lib.training.sources.resize_images`: area averaging for an integer factor), so at
the built-in-data profiles, where the dataset is rendered at twice the RCDM resolution, a
low-res training input is exactly an image the RCDM was trained to produce.
"""
from __future__ import annotations

import torch

from rcdm_lib.training.sources import resize_images


def _signed(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] in [-1, 1] -> uint8 (the inverse of x / 127.5 - 1, rounded)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """[N, C, H, W] in [-1, 1] -> [N, C, size, size] with the RCDM preprocessing, in float.

    The same resize as `resize_images` without its uint8 rounding, so that it can be
    applied to model outputs (the super-resolved image's consistency with its input).
    """
    if images.shape[-1] == size:
        return images
    if images.shape[-1] % size == 0:
        return torch.nn.functional.avg_pool2d(images.float(), images.shape[-1] // size)
    return torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False)


class SuperResSource:
    """High-res images x0 [B, 3, L, L] in [-1, 1] with model kwargs {"low_res": [B, 3, s, s]}.

    high: uint8 [N, 3, L, L]; the low-res images are resize_images(high, small_size).
    Follows the training loop's data-source interface: batch(indices, generators).
    """

    def __init__(self, high_uint8: torch.Tensor, small_size: int, provenance: dict | None = None):
        if high_uint8.dim() != 4 or high_uint8.shape[1] != 3 or high_uint8.dtype != torch.uint8:
            raise ValueError(f"high-res images must be uint8 [N, 3, L, L], got {high_uint8.dtype} "
                             f"{list(high_uint8.shape)}")
        large = high_uint8.shape[-1]
        if not 0 < small_size < large:
            raise ValueError(f"small_size must be smaller than the high-res size {large}, got {small_size}")
        self.high = high_uint8
        self.low = resize_images(high_uint8, small_size)      # uint8 [N, 3, s, s]
        self.large_size, self.small_size = large, int(small_size)
        self.provenance = provenance or {}

    def __len__(self) -> int:
        return self.high.shape[0]

    def batch(self, indices: torch.Tensor, generators=None):
        """(x0 [B, 3, L, L], {"low_res": [B, 3, s, s]}), both in [-1, 1]; no per-example randomness."""
        return _signed(self.high[indices]), {"low_res": _signed(self.low[indices])}

    def preview_kwargs(self, n: int) -> list[tuple[str, dict]]:
        idx = torch.arange(min(n, len(self)))
        return [("low_res", {"low_res": _signed(self.low[idx])})]

    def describe(self) -> dict:
        return {"kind": "superres", "n": len(self), "large_size": self.large_size, "small_size": self.small_size,
                **self.provenance}


def shapes_pairs(split: str, data_size: int, seed: int, large_size: int, small_size: int, length: int,
                 indices=None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Built-in FactorShapes images as (high uint8 [N, 3, L, L], low uint8 [N, 3, s, s], factors).

    The dataset is rendered at data_size and resized to large_size (nothing to do when they
    are equal, as in the smoke and tiny profiles); the low-res image is resized from the high-res one.
    """
    import numpy as np

    from rcdm_lib.data import FactorShapes

    ds = FactorShapes(split, size=data_size, length=length, seed=seed)
    if indices is None:
        native, factors = ds.all_uint8()                                        # [N, 3, E, E]
    else:
        imgs, f = ds.render_uint8(np.asarray(indices))
        native = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
        factors = {k: torch.as_tensor(v) for k, v in f.items()}
    high = resize_images(native, large_size)
    return high, resize_images(high, small_size), factors


def shapes_superres_source(data_size: int, seed: int, large_size: int, small_size: int, length: int) -> SuperResSource:
    """Training pairs from the built-in train split (the RCDM's training images as low-res)."""
    from rcdm_lib.data import FactorShapes

    high, _, _ = shapes_pairs("train", data_size, seed, large_size, small_size, length)
    spec = FactorShapes("train", size=data_size, length=length, seed=seed).spec
    return SuperResSource(high, small_size, provenance={"dataset": spec})


def folder_pairs(root, large_size: int, small_size: int, n: int, start: int = 0):
    """Real images of an ImageFolder (ImageNet layout): (high [n, 3, L, L], low [n, 3, s, s], labels [n]).

    The high-res image is the official center crop at large_size; images in [-1, 1].
    """
    from rcdm_lib.data import ImageFolder, Preprocess

    ds = ImageFolder(root, transform=Preprocess(large_size))
    if len(ds) < start + n:
        raise ValueError(f"{root} holds {len(ds)} images; {start + n} are needed")
    items = [ds[i] for i in range(start, start + n)]
    high = torch.stack([x for x, _ in items])
    labels = torch.tensor([y for _, y in items])
    return high, downsample(high, small_size), labels
