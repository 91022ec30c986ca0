"""Natural images bundled with scikit-image: background textures and out-of-distribution photos.

The two sets are disjoint on purpose: textures (grass, gravel, brick, ...) appear inside the
built-in dataset, the photographs (astronaut, chelsea, coffee, rocket, ...) never do, so they
stay out of distribution for every encoder and RCDM trained on it.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

TEXTURE_NAMES = ("grass", "gravel", "brick", "moon", "hubble_deep_field", "immunohistochemistry")
PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "cat", "camera", "coins", "clock")

# A texture bank image is TEXTURE_ZOOM times the dataset image side; a dataset background is
# a random SxS crop of it, so one texture gives many different backgrounds.
TEXTURE_ZOOM = 3
# Textures are mapped to this grey range: dark and low-contrast enough that the object, not
# the texture's own pattern, is the most salient thing in the image.
TEXTURE_RANGE = (40, 110)


def _skimage_image(name: str) -> np.ndarray:
    import skimage.data

    try:
        img = getattr(skimage.data, name)()
    except Exception as e:  # pragma: no cover - depends on the scikit-image install
        raise RuntimeError(
            f"scikit-image could not provide its bundled image {name!r} ({e}); "
            "reinstall scikit-image (pip install scikit-image) so its data files are present"
        ) from e
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3]).astype(np.uint8)


def _center_square(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[top : top + s, left : left + s]


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from skimage.transform import resize

    out = resize(img, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@lru_cache(maxsize=16)
def texture_bank(size: int) -> np.ndarray:
    """Textures resized for dataset images of side `size`: uint8 [T x Z x Z x 3], Z = 3*size.

    Contrast is compressed towards dark values so saturated objects stay visible on them.
    """
    z = TEXTURE_ZOOM * size
    bank = []
    for name in TEXTURE_NAMES:
        img = _resize(_center_square(_skimage_image(name)), z).astype(np.float32)
        lo, hi = np.percentile(img, 2), np.percentile(img, 98)
        img = (img - lo) / max(hi - lo, 1.0)
        bank.append(np.clip(TEXTURE_RANGE[0] + (TEXTURE_RANGE[1] - TEXTURE_RANGE[0]) * img, 0, 255).astype(np.uint8))
    bank = np.stack(bank)
    bank.setflags(write=False)
    return bank


def ood_photos(size: int = 32, names: tuple[str, ...] = PHOTO_NAMES):
    """Out-of-distribution photographs, center-cropped square and resized to `size`.

    Returns (images, names): images is a float tensor [N x 3 x size x size] in [-1, 1]
    (x / 127.5 - 1, like every dataset image).
    """
    import torch

    imgs = np.stack([_resize(_center_square(_skimage_image(n)), size) for n in names])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return x, list(names)
