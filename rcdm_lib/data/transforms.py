"""The official preprocessing pair and image loading helpers.

The official RCDM loader (facebookresearch/RCDM, guided_diffusion/image_datasets.py) turns one
image into two arrays: the diffusion image (center crop at `image_size`) and a separate
encoder image (center crop at 224), both `x / 127.5 - 1`, with the same random flip. The crop
is guided-diffusion's `center_crop_arr`: halve with a box filter while the short side is at
least twice the target, bicubic-resize the short side to the target, then center-crop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


def to_rgb(img: Image.Image, background=(255, 255, 255)) -> Image.Image:
    """Any PIL mode (L, LA, P with transparency, RGBA, CMYK, I;16, ...) -> RGB.

    Transparent pixels are composited on `background` instead of exposing undefined colours.
    """
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, tuple(background) + (255,))
        return Image.alpha_composite(bg, img).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit samples (a 16-bit PNG opens as I;16 or I): 65535 is white, whatever the image's own maximum
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        img = img.convert("L")
    return img.convert("RGB")


def center_crop_arr(img: Image.Image, image_size: int) -> np.ndarray:
    """guided-diffusion's center crop: uint8 [image_size x image_size x 3]."""
    while min(*img.size) >= 2 * image_size:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    scale = image_size / min(*img.size)
    img = img.resize(tuple(max(image_size, round(x * scale)) for x in img.size), resample=Image.BICUBIC)
    arr = np.asarray(img)
    top = (arr.shape[0] - image_size) // 2
    left = (arr.shape[1] - image_size) // 2
    return arr[top : top + image_size, left : left + image_size]


def to_signed_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 [H x W x 3] -> float32 [3 x H x W] in [-1, 1] (x / 127.5 - 1)."""
    return torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True)).permute(2, 0, 1).float() / 127.5 - 1.0


def _as_pil(img) -> Image.Image:
    if isinstance(img, Image.Image):
        return to_rgb(img)
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.dtype != torch.uint8:
            t = ((t.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # assume [-1, 1]
        img = t.permute(1, 2, 0).numpy() if t.shape[0] in (1, 3) else t.numpy()
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, 2)
    return Image.fromarray(arr[:, :, :3].astype(np.uint8), "RGB")


@dataclass(frozen=True)
class Preprocess:
    """One image (PIL, uint8 array HxWx3, or tensor 3xHxW) -> float [3 x size x size] in [-1, 1]."""

    size: int

    def __call__(self, img, flip: bool = False) -> torch.Tensor:
        arr = center_crop_arr(_as_pil(img), self.size)
        if flip:
            arr = arr[:, ::-1]
        return to_signed_tensor(arr)

    @property
    def spec(self) -> dict:
        return {"preprocess": "center_crop_arr", "size": self.size, "scale": "x/127.5-1"}


@dataclass(frozen=True)
class PreprocessPair:
    """The official pair: (RCDM image at image_size, encoder image at encoder_size), same flip.

    imagenet128: PreprocessPair(128, 224). Tiny profile: encoder_size = image_size (native).
    """

    image_size: int
    encoder_size: int = 224
    random_flip: bool = False

    def __call__(self, img, flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The pair of one image, both flipped when `flip`. With random_flip, the data source draws each image's
        flip from the run's seeded generators (training.data.FolderPairSource), never from a global state."""
        pil = _as_pil(img)
        return Preprocess(self.image_size)(pil, flip), Preprocess(self.encoder_size)(pil, flip)

    @property
    def spec(self) -> dict:
        return {"pair": "official", "image_size": self.image_size, "encoder_size": self.encoder_size,
                "random_flip": self.random_flip, "scale": "x/127.5-1"}
