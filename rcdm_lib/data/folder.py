"""ImageFolder for real data in the ImageNet layout (root/<class>/<image>), robust to bad files.

Every mode is converted to RGB (grayscale, CMYK, palette, alpha composited on white). A file
that cannot be decoded -- corrupt, truncated, zero bytes, not an image -- is reported by path
with a warning, recorded in `bad_files`, and skipped: a long training run never crashes on it.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

from PIL import Image

from rcdm_lib.data.transforms import to_rgb

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".jpe")


class BadImageWarning(UserWarning):
    pass


def load_image(path: str | Path) -> Image.Image:
    """Decode fully (so truncation is caught here, not later) and convert to RGB."""
    with open(path, "rb") as f:
        img = Image.open(f)
        img.load()
    return to_rgb(img)


class ImageFolder:
    """`ds[i]` -> (transform(PIL RGB image), class index). Classes are sorted subfolder names.

    check_files=True decodes every file once at construction (a full pass: use it for small
    sets or in tests); otherwise only zero-byte files are dropped up front and other bad files
    are found lazily: `ds[i]` on a bad file warns, records it and returns the next good image.
    """

    def __init__(self, root: str | Path, transform: Callable | None = None, check_files: bool = False,
                 extensions: tuple[str, ...] = IMG_EXTENSIONS):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} not found; expected root/<class>/<image> (ImageNet layout)")
        self.transform = transform
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if not self.classes:
            raise ValueError(f"{self.root} has no class subfolders; expected root/<class>/<image> (ImageNet layout)")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.bad_files: list[tuple[str, str]] = []
        samples = []
        for c in self.classes:
            for dirpath, _, files in sorted(os.walk(self.root / c, followlinks=True)):
                for fn in sorted(files):
                    if fn.lower().endswith(extensions):
                        samples.append((os.path.join(dirpath, fn), self.class_to_idx[c]))
        good = []
        for path, y in samples:
            if os.path.getsize(path) == 0:
                self._report(path, "zero-byte file")
            elif check_files and (err := self._decode_error(path)):
                self._report(path, err)
            else:
                good.append((path, y))
        self.samples = good
        if not self.samples:
            raise ValueError(f"no readable images under {self.root} (extensions {extensions}); "
                             f"{len(self.bad_files)} bad files were skipped")

    @staticmethod
    def _decode_error(path) -> str | None:
        try:
            load_image(path)
            return None
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    def _report(self, path: str, why: str) -> None:
        self.bad_files.append((str(path), why))
        warnings.warn(f"skipping unreadable image {path} ({why})", BadImageWarning, stacklevel=3)

    @property
    def targets(self) -> list[int]:
        return [y for _, y in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        img, y = self.load(index)
        return (self.transform(img) if self.transform else img), y

    def load(self, index: int):
        """(PIL RGB image, class index) of sample `index`, untransformed; an unreadable file is reported once and
        the next readable sample is given instead."""
        n = len(self.samples)
        for k in range(n):
            path, y = self.samples[(index + k) % n]
            try:
                return load_image(path), y
            except Exception as e:
                if path not in {p for p, _ in self.bad_files}:
                    self._report(path, f"{type(e).__name__}: {e}")
                continue
        raise RuntimeError(f"no readable image left in {self.root}; bad files: {[p for p, _ in self.bad_files]}")

    @property
    def spec(self) -> dict:
        """Identifies the data for the feature cache: root and the exact file list (and sizes)."""
        import hashlib

        h = hashlib.sha256()
        for path, y in self.samples:
            h.update(f"{os.path.relpath(path, self.root)}\t{y}\t{os.path.getsize(path)}\n".encode())
        return {"dataset": "ImageFolder", "root": str(self.root.resolve()), "n": len(self.samples),
                "files_sha256": h.hexdigest()}
