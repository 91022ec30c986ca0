"""The data of a run, split by split, with what is known about each image.

Two sources behind one interface:
- the built-in shapes data (settings `data.size`, `data.seed`, `data.lengths`): train, val and test
  splits whose generative factors are known (shape is the class);
- an ImageFolder root (settings `data.root`) holding train/ and val/: train/ is what models, probes,
  banks and densities are fitted on, val/ plays the part of both val and test; only the class is known.

    data = run_data(settings)
    b = data.split("val").batch(range(8))    # b.images [8, 3, E, E] in [-1, 1] (the encoder view), b.labels [8]
    b.factors                                # {"shape": ..., "colour": ...} on the shapes data, None on a folder
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rcdm_lib.data.folder import ImageFolder
from rcdm_lib.data.shapes import SHAPES, FactorShapes
from rcdm_lib.data.transforms import Preprocess

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Batch:
    images: torch.Tensor                       # [N, 3, E, E] in [-1, 1]: the encoder's view
    labels: torch.Tensor                       # [N] class indices
    factors: dict[str, torch.Tensor] | None    # every known factor [N] (the shapes data), else None


class ShapesSplit:
    def __init__(self, ds: FactorShapes):
        self.ds = ds
        self.name = ds.split
        self.label_names = list(SHAPES)

    def __len__(self) -> int:
        return len(self.ds)

    def batch(self, indices) -> Batch:
        images, factors = self.ds.batch(list(indices))
        return Batch(images, factors["shape"].long(), factors)


class FolderSplit:
    """An ImageFolder in a fixed random order (seeded): the first n images of a split are a random sample of it,
    as they are on the shapes data, not the first classes of a sorted folder."""

    def __init__(self, root: Path, name: str, encoder_size: int, seed: int = 0):
        self.ds = ImageFolder(root, transform=Preprocess(encoder_size))
        self.name = name
        self.label_names = list(self.ds.classes)
        self.order = torch.randperm(len(self.ds), generator=torch.Generator().manual_seed(seed)).tolist()

    def __len__(self) -> int:
        return len(self.ds)

    def batch(self, indices) -> Batch:
        items = [self.ds[self.order[int(i) % len(self.ds)]] for i in indices]
        if not items:
            return Batch(torch.zeros(0, 3, 1, 1), torch.zeros(0, dtype=torch.long), None)
        return Batch(torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items]), None)


class RunData:
    """The splits of a run's data (see the module docstring); splits are built when first asked for."""

    def __init__(self, settings: dict):
        d = settings.get("data") or {}
        self.root = Path(d["root"]) if d.get("root") else None
        if self.root is None and not d.get("size"):
            raise ValueError("the settings have neither built-in data (data.size) nor data.root")
        self.encoder_size = int(d.get("encoder_size") or 224) if self.root else int(d["size"])
        self._d = d
        self._splits: dict[str, ShapesSplit | FolderSplit] = {}

    @property
    def has_factors(self) -> bool:
        return self.root is None

    def describe(self) -> str:
        if self.root is None:
            return f"the built-in shapes data at {self.encoder_size}px (every generative factor known)"
        return f"the ImageFolder {self.root.name}/ (train/ and val/; only each image's class is known)"

    def split(self, name: str) -> ShapesSplit | FolderSplit:
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLIT_NAMES}")
        if name not in self._splits:
            if self.root is None:
                lengths = self._d.get("lengths") or {}
                self._splits[name] = ShapesSplit(FactorShapes(name, size=self.encoder_size, length=lengths.get(name),
                                                              seed=int(self._d.get("seed", 0))))
            else:   # val/ plays the part of the test split too
                folder = "train" if name == "train" else "val"
                self._splits[name] = FolderSplit(self.root / folder, name, self.encoder_size,
                                                 seed=int(self._d.get("seed", 0)))
        return self._splits[name]
