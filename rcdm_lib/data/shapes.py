"""FactorShapes: the built-in procedural dataset with known generative factors.

Each image is one object (its shape is the class label) with a colour, a position, a scale and
a rotation, on a background that is either a plain colour or a crop of a natural texture
bundled with scikit-image. Every image is a pure function of (seed, split, index): its factors
come from a numpy Generator seeded with exactly that triple, and rendering is plain float32
numpy followed by rounding to uint8, so the bytes are identical across runs and processes.

Rendering is vectorised over a batch: shapes are signed distance functions evaluated on the
pixel grid, and anti-aliasing comes from the distance itself (coverage = 0.5 - d / pixel),
so no supersampling is needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rcdm_lib.data.textures import TEXTURE_NAMES, TEXTURE_ZOOM, texture_bank

if TYPE_CHECKING:
    import torch

SHAPES = (
    "circle", "ellipse", "triangle", "square", "star", "cross",
    "heart", "ring", "crescent", "arrow", "ell", "half_disc",
)
COLORS = {
    "red": (230, 40, 40), "orange": (245, 140, 20), "yellow": (240, 220, 40),
    "green": (40, 190, 60), "cyan": (40, 200, 220), "blue": (40, 80, 235),
    "magenta": (220, 50, 200), "white": (245, 245, 245),
}
PLAIN_BACKGROUNDS = {
    "black": (15, 15, 15), "gray": (105, 105, 105), "navy": (25, 30, 85), "brown": (90, 55, 30),
}
BACKGROUNDS = tuple(PLAIN_BACKGROUNDS) + TEXTURE_NAMES
SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_LENGTHS = {"train": 50_000, "val": 5_000, "test": 5_000}
SIZES = (16, 32, 64)

SCALE_RANGE = (0.45, 0.8)       # object radius, in units of half the image side
POSITION_RANGE = (-0.3, 0.3)    # object centre, image coordinates in [-1, 1]
ROTATION_RANGE = (-45.0, 45.0)  # degrees; keeps square/star orientation unambiguous


@dataclass(frozen=True)
class Factor:
    name: str
    kind: str            # "categorical" or "continuous"
    num_classes: int = 0  # categorical only
    values: tuple = ()    # categorical value names, or (low, high) for continuous


FACTORS = (
    Factor("shape", "categorical", len(SHAPES), SHAPES),
    Factor("color", "categorical", len(COLORS), tuple(COLORS)),
    Factor("background", "categorical", len(BACKGROUNDS), BACKGROUNDS),
    Factor("scale", "continuous", 0, SCALE_RANGE),
    Factor("x", "continuous", 0, POSITION_RANGE),
    Factor("y", "continuous", 0, POSITION_RANGE),
    Factor("rotation", "continuous", 0, ROTATION_RANGE),
)
FACTOR_NAMES = tuple(f.name for f in FACTORS)


def sample_factors(seed: int, split: str, indices, size: int = 32) -> dict[str, np.ndarray]:
    """Factors of images `indices` of `split`; one Generator per image, seeded (seed, split, index).

    Besides FACTORS, the dict holds `tex_x`, `tex_y`: the texture crop offset (pixels).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    n = len(indices)
    out = {k: np.empty(n, np.int64) for k in ("shape", "color", "background", "tex_x", "tex_y")}
    for k in ("scale", "x", "y", "rotation"):
        out[k] = np.empty(n, np.float64)
    span = (TEXTURE_ZOOM - 1) * size
    for j, i in enumerate(indices):
        rng = np.random.default_rng([int(seed), SPLITS[split], int(i)])
        out["shape"][j] = rng.integers(len(SHAPES))
        out["color"][j] = rng.integers(len(COLORS))
        out["background"][j] = rng.integers(len(BACKGROUNDS))
        out["scale"][j] = rng.uniform(*SCALE_RANGE)
        out["x"][j] = rng.uniform(*POSITION_RANGE)
        out["y"][j] = rng.uniform(*POSITION_RANGE)
        out["rotation"][j] = rng.uniform(*ROTATION_RANGE)
        t = rng.integers(0, span + 1, size=2)
        out["tex_x"][j], out["tex_y"][j] = t
    return out


# --------------------------------------------------------------------------- shapes as SDFs
# Object coordinates: the object fits the unit disc; y points down (image convention).

def _polygon_sdf(u: np.ndarray, v: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Signed distance from points (u, v) [M] to a simple polygon `verts` [K x 2] (inside < 0)."""
    d2 = np.full(u.shape, np.inf, np.float32)
    inside = np.zeros(u.shape, bool)
    k = len(verts)
    for a in range(k):
        (x0, y0), (x1, y1) = verts[a], verts[(a + 1) % k]
        ex, ey = x1 - x0, y1 - y0
        wx, wy = u - x0, v - y0
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dx, dy = wx - t * ex, wy - t * ey
        np.minimum(d2, dx * dx + dy * dy, out=d2)
        crosses = (y0 > v) != (y1 > v)
        xint = x0 + (v - y0) * ex / (ey if ey != 0 else 1e-12)
        inside ^= crosses & (u < xint)
    d = np.sqrt(d2)
    return np.where(inside, -d, d)


def _regular(n: int, r: float = 1.0, phase: float = 0.0) -> np.ndarray:
    a = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([r * np.sin(a), -r * np.cos(a)], 1).astype(np.float32)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    a = np.pi * np.arange(2 * points) / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.sin(a), -r * np.cos(a)], 1).astype(np.float32)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y + 2.5], 1) / 17.0
    return pts.astype(np.float32)


_POLYGONS = {
    "triangle": _regular(3, 1.0) + np.float32([0, 0.15]),
    "square": _regular(4, 0.95, np.pi / 4),
    "star": _star(),
    "cross": np.float32([[-.3, -.9], [.3, -.9], [.3, -.3], [.9, -.3], [.9, .3], [.3, .3], [.3, .9],
                         [-.3, .9], [-.3, .3], [-.9, .3], [-.9, -.3], [-.3, -.3]]),
    "heart": _heart(),
    "arrow": np.float32([[-.9, -.22], [.1, -.22], [.1, -.65], [.95, 0], [.1, .65], [.1, .22], [-.9, .22]]),
    "ell": np.float32([[-.6, -.9], [-.1, -.9], [-.1, .4], [.7, .4], [.7, .9], [-.6, .9]]),
}


def shape_sdf(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (object units, inside < 0) of shape `name` at points (u, v)."""
    if name in _POLYGONS:
        return _polygon_sdf(u, v, _POLYGONS[name])
    if name == "circle":
        return np.sqrt(u * u + v * v) - 0.9
    if name == "ellipse":
        a, b = 1.0, 0.5
        return (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * b
    if name == "ring":
        return np.abs(np.sqrt(u * u + v * v) - 0.7) - 0.25
    if name == "crescent":
        outer = np.sqrt(u * u + v * v) - 0.95
        inner = np.sqrt((u - 0.45) ** 2 + v * v) - 0.75
        return np.maximum(outer, -inner)
    if name == "half_disc":
        vv = v - 0.4
        return np.maximum(np.sqrt(u * u + vv * vv) - 1.0, vv)
    raise ValueError(f"unknown shape {name!r}; expected one of {SHAPES}")


def render(factors: dict[str, np.ndarray], size: int = 32) -> np.ndarray:
    """Render images from factors (as returned by sample_factors): uint8 [N x size x size x 3]."""
    if size not in SIZES:
        raise ValueError(f"image size {size} is not supported; expected one of {SIZES}")
    n = len(factors["shape"])
    f32 = np.float32
    # background
    out = np.empty((n, size, size, 3), f32)
    bg = factors["background"]
    plain = np.array(list(PLAIN_BACKGROUNDS.values()), f32)
    n_plain = len(plain)
    is_plain = bg < n_plain
    out[is_plain] = plain[bg[is_plain]][:, None, None, :]
    tex_idx = np.nonzero(~is_plain)[0]
    if len(tex_idx):
        bank = texture_bank(size)
        ar = np.arange(size)
        t = bg[tex_idx] - n_plain
        rows = (factors["tex_y"][tex_idx][:, None] + ar)[:, :, None]
        cols = (factors["tex_x"][tex_idx][:, None] + ar)[:, None, :]
        out[tex_idx] = bank[t[:, None, None], rows, cols]
    # object: pixel centres in image coords [-1, 1], mapped into each object's frame
    g = ((np.arange(size, dtype=f32) + 0.5) / size) * 2 - 1
    gy, gx = np.meshgrid(g, g, indexing="ij")
    s = factors["scale"].astype(f32)[:, None, None]
    th = np.deg2rad(factors["rotation"]).astype(f32)[:, None, None]
    dx = gx[None] - factors["x"].astype(f32)[:, None, None]
    dy = gy[None] - factors["y"].astype(f32)[:, None, None]
    c, sn = np.cos(th), np.sin(th)
    u = (c * dx + sn * dy) / s
    v = (-sn * dx + c * dy) / s
    sd = np.empty((n, size, size), f32)
    for k, name in enumerate(SHAPES):
        sel = np.nonzero(factors["shape"] == k)[0]
        if len(sel):
            sd[sel] = shape_sdf(name, u[sel], v[sel])
    pixel = f32(2.0 / size)
    alpha = np.clip(0.5 - sd * s / pixel, 0.0, 1.0)[..., None]
    col = np.array(list(COLORS.values()), f32)[factors["color"]][:, None, None, :]
    out = out * (1 - alpha) + col * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_float(images_uint8) -> "torch.Tensor":
    """uint8 [N x H x W x 3] (numpy or torch) -> float32 torch [N x 3 x H x W] in [-1, 1]."""
    import torch

    x = torch.as_tensor(images_uint8)
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


class FactorShapes:
    """The built-in dataset as a map-style torch Dataset.

    `ds[i]` -> (image float32 [3 x size x size] in [-1, 1], factors dict of python numbers).
    `ds.batch(indices)` renders many at once (fast path): (images [N x 3 x H x W], factors of
    tensors). `ds.spec` identifies the data exactly (used by the feature cache).
    """

    def __init__(self, split: str = "train", size: int = 32, length: int | None = None, seed: int = 0):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
        if size not in SIZES:
            raise ValueError(f"image size {size} is not supported; expected one of {SIZES}")
        self.split, self.size, self.seed = split, int(size), int(seed)
        self.length = int(DEFAULT_LENGTHS[split] if length is None else length)
        self.factors = FACTORS

    @property
    def spec(self) -> dict:
        return {"dataset": "FactorShapes", "version": 1, "split": self.split, "size": self.size,
                "length": self.length, "seed": self.seed}

    def __len__(self) -> int:
        return self.length

    def _check(self, indices: np.ndarray) -> None:
        if len(indices) and (indices.min() < -self.length or indices.max() >= self.length):
            raise IndexError(f"index out of range for FactorShapes split {self.split!r} of length {self.length}")

    def render_uint8(self, indices) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """uint8 [N x H x W x 3] images and numpy factors for `indices`."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self._check(indices)
        indices = indices % self.length
        f = sample_factors(self.seed, self.split, indices, self.size)
        return render(f, self.size), f

    def batch(self, indices):
        import torch

        imgs, f = self.render_uint8(indices)
        return to_float(imgs), {k: torch.as_tensor(f[k]) for k in FACTOR_NAMES}

    def __getitem__(self, i: int):
        x, f = self.batch([i])
        return x[0], {k: v[0].item() for k, v in f.items()}

    def all_uint8(self, chunk: int = 2048):
        """The whole split: uint8 torch [N x 3 x H x W] and factors dict of torch tensors."""
        import torch

        imgs, facs = [], {k: [] for k in FACTOR_NAMES}
        for start in range(0, self.length, chunk):
            im, f = self.render_uint8(np.arange(start, min(start + chunk, self.length)))
            imgs.append(torch.from_numpy(im).permute(0, 3, 1, 2).contiguous())
            for k in FACTOR_NAMES:
                facs[k].append(torch.as_tensor(f[k]))
        return torch.cat(imgs), {k: torch.cat(v) for k, v in facs.items()}

    def __repr__(self) -> str:
        return f"FactorShapes(split={self.split!r}, size={self.size}, length={self.length}, seed={self.seed})"
