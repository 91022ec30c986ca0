"""Image grids for figures and training previews."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C]. Images holding NaN are refused (they would show as black)."""
    x = images.detach().float().cpu()
    bad = torch.isnan(x).flatten(1).any(1) if x.dim() > 1 else torch.isnan(x)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} of {x.shape[0]} images hold NaN (first: image {int(bad.nonzero()[0, 0])}); "
                         "a figure would show them as black: find where the NaN came from (a diverged model, an "
                         "edited representation) instead")
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: torch.Tensor, nrow: int = 8, pad: int = 1, scale: int = 1, pad_value: int = 255) -> np.ndarray:
    """Tile [N, C, H, W] in [-1, 1] into one uint8 [H', W', 3] array, upscaled by `scale`
    with nearest neighbour so that small images stay sharp."""
    arr = to_uint8(images)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if scale > 1:
        arr = arr.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, c = arr.shape
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    grid = np.full((nrows * (h + pad) + pad, ncol * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = arr[i]
    return grid


def save_image_grid(images: torch.Tensor, path, nrow: int = 8, scale: int = 1) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(images, nrow=nrow, scale=scale)).save(path)
    return path
