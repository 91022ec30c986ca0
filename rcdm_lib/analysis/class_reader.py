"""A reader of the run's classes for images at a given resolution: does an image look like a real one of its class?

- the built-in shapes data: the shape classifier that scores RCDM training (a tiny supervised ResNet trained on
  real images at that resolution; rcdm_lib.training.quality);
- an ImageFolder: a linear probe on the supervised backbone's representation, fitted on train/ images (or, when
  the run has no supervised encoder, on its first representation's, saying so).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class ClassReader:
    probabilities: Callable[[torch.Tensor], torch.Tensor]   # images [N, 3, s, s] in [-1, 1] -> [N, C]
    num_classes: int
    what: str                                               # one line for the page

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.probabilities(images).argmax(1)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.predict(images) == labels.to(torch.long)).float().mean())


def class_reader(run, size: int, n_train: int = 5000) -> ClassReader:
    """The reader of `run`'s classes for images at `size` pixels (see the module docstring)."""
    from rcdm_lib.config import repo_path

    if run.data.has_factors:
        from rcdm_lib.training.quality import classify, train_shape_classifier

        clf = train_shape_classifier(run.settings, size, repo_path(run.settings.get("cache_dir") or ".cache")
                                     / run.profile, log=lambda *a: None)
        return ClassReader(lambda x: classify(clf, x), clf.config.num_classes,
                           f"the shape classifier (a small supervised ResNet trained on real images at {size}px)")
    from rcdm_lib.analysis.adversarial import LinearProbe
    from rcdm_lib.metrics import encoder_view

    from rcdm_lib.settings import SettingsError

    sup = "supervised_backbone"
    try:
        run.encoder(sup)
        why = ""
    except SettingsError:   # no supervised encoder in the settings: the run's first representation
        sup, why = run.names[0], " (no supervised encoder is given: encoders.weights.supervised)"
    split = run.data.split("train")
    batch = split.batch(range(min(n_train, len(split))))
    probe = LinearProbe.fit(run.encode(sup, batch.images), batch.labels, num_classes=len(split.label_names))
    E = run.encoder_size

    def probabilities(x):
        return torch.softmax(probe(run.encode(sup, encoder_view(x, E))), dim=1)

    return ClassReader(probabilities, len(split.label_names),
                       f"a linear probe on {sup} fitted on {len(batch.labels)} train/ images{why}")
