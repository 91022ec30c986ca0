"""What a chapter can read off an image of the run, real or sampled: the factors a factor table compares.

- the built-in shapes data: its generative factors (shape, colour, background, ...), known for real images
  and read off samples by a factor probe fitted on real train images (pixels plus the supervised backbone's
  features when the run has one; rcdm_lib.metrics.FactorProbe);
- an ImageFolder: only the class is known. The factors are what the data has: the class (known for real
  images, read off samples by a linear probe, rcdm_lib.analysis.class_reader) and colour statistics measured
  the same way on real images and on samples: the dominant hue ("color", with "gray" for images without
  colour), the saturation (grayscale-ness) and the brightness.

Roles tie the paper's questions to the factors a run has: `content` is what an object is, `appearance` what a
backbone keeps and a projector drops (the paper: colour and background), `swap` what representation algebra
moves from one image to another (the paper: the background), `contrast` the categorical factors an edit's
source and target differ in.

    rf = run_factors(run, n_train=5000)
    truth = rf.truth(batch)                 # {factor: [N]} of real images
    read = rf.read(samples)                 # {factor: [N, K]} of samples [N, K, 3, S, S]
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rcdm_lib.data.shapes import FACTORS, Factor
from rcdm_lib.metrics.factor_probe import reading_scores

HUES = ("red", "yellow", "green", "cyan", "blue", "magenta")
GRAY = "gray"
GRAY_SATURATION = 0.12     # mean saturation below which an image counts as having no colour


def colour_statistics(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Measured colour factors of images [..., 3, H, W] in [-1, 1]: "color" (index into HUES + ("gray",): the
    hue bin holding most of the saturation-weighted pixels, gray when the mean saturation is below
    GRAY_SATURATION), "saturation" and "brightness" (means over the pixels, in [0, 1])."""
    lead = images.shape[:-3]
    x = ((images.reshape(-1, *images.shape[-3:]).float().clamp(-1, 1) + 1) / 2)   # [N, 3, H, W] in [0, 1]
    mx, mn = x.max(1).values, x.min(1).values                                        # [N, H, W]
    chroma = mx - mn
    sat = torch.where(mx > 0, chroma / mx.clamp_min(1e-8), torch.zeros_like(mx))
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    c = chroma.clamp_min(1e-8)
    hue = torch.where(mx == r, ((g - b) / c) % 6, torch.where(mx == g, (b - r) / c + 2, (r - g) / c + 4))   # [0, 6)
    bins = ((hue + 0.5) % 6).floor().long().clamp(0, 5)                               # centred on the six hues
    weight = (sat * (chroma > 1e-6)).flatten(1)                                       # [N, HW]
    votes = torch.zeros(x.shape[0], 6).scatter_add_(1, bins.flatten(1), weight)
    mean_sat = sat.flatten(1).mean(1)
    color = torch.where(mean_sat < GRAY_SATURATION, torch.full_like(mean_sat, len(HUES)).long(), votes.argmax(1))
    out = {"color": color, "saturation": mean_sat, "brightness": x.mean((1, 2, 3))}
    return {k: v.reshape(lead) for k, v in out.items()}


@dataclass(frozen=True)
class FactorRoles:
    content: tuple[str, ...]
    appearance: tuple[str, ...]
    swap: str
    contrast: tuple[str, ...]


SHAPES_ROLES = FactorRoles(content=("shape", "color"), appearance=("color", "background"), swap="background",
                           contrast=("shape", "color", "background"))
FOLDER_ROLES = FactorRoles(content=("class",), appearance=("color", "saturation"), swap="color",
                           contrast=("class", "color"))


class RunFactors:
    """The factors of a run's images (see the module docstring); build with run_factors."""

    def __init__(self, run, factors: tuple[Factor, ...], roles: FactorRoles, what: str, reader):
        self.run, self.factors, self.roles, self.what, self._reader = run, factors, roles, what, reader

    def by_name(self, names) -> list[Factor]:
        return [f for f in self.factors if f.name in names]

    def truth(self, batch) -> dict[str, torch.Tensor]:
        """{factor: [N]} of real images (a data.splits.Batch): known factors, or the class and measured colour."""
        if batch.factors is not None:
            return {f.name: torch.as_tensor(batch.factors[f.name]) for f in self.factors}
        return {"class": batch.labels.long(), **colour_statistics(self.run.rcdm_view(batch.images))}

    def read(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """{factor: [...]} read off images [..., 3, S, S] at the RCDM resolution."""
        return self._reader(images)

    def score(self, batch) -> dict[str, dict]:
        """How well the readings of real images (at the RCDM resolution) match their truth: accuracy for a
        categorical factor, R^2 for a continuous one. The ceiling of every "kept" fraction."""
        return reading_scores(self.read(self.run.rcdm_view(batch.images)), self.truth(batch), self.factors)

    def describe_score(self, batch) -> str:
        return "factor readings of held-out real images at the RCDM resolution (the reader's ceiling): " + ", ".join(
            f"{k} {v['metric']} {v['value']:.2f}" for k, v in self.score(batch).items())


def run_factors(run, n_train: int = 5000) -> RunFactors:
    """The factors of `run`'s data, their reader fitted on the first n_train train images."""
    if run.data.has_factors:
        from rcdm_lib.metrics import FactorProbe, encoder_view, pixel_features

        sup, _ = run.supervised_and_ssl_backbones()
        E = run.encoder_size

        def features(x):         # x at the RCDM resolution; the encoder sees the S -> E round trip
            f = pixel_features(x)
            return f if sup is None else torch.cat([f, run.encode(sup, encoder_view(x, E))], 1)

        b = run.data.split("train").batch(range(n_train))
        probe = FactorProbe(features).fit(run.rcdm_view(b.images), b.factors)
        what = (f"the built-in data's factors, read off samples by a probe on pixels"
                f"{'' if sup is None else ' and ' + sup + ' features'} fitted on {n_train} train images")
        return RunFactors(run, FACTORS, SHAPES_ROLES, what, probe.predict)
    from rcdm_lib.analysis.class_reader import class_reader

    classes = run.data.split("train").label_names
    reader = class_reader(run, run.image_size, n_train=n_train)

    def read(images):
        lead = images.shape[:-3]
        flat = images.reshape(-1, *images.shape[-3:])
        return {"class": reader.predict(flat).reshape(lead), **colour_statistics(images)}

    factors = (Factor("class", "categorical", len(classes), tuple(classes)),
               Factor("color", "categorical", len(HUES) + 1, HUES + (GRAY,)),
               Factor("saturation", "continuous", 0, (0.0, 1.0)),
               Factor("brightness", "continuous", 0, (0.0, 1.0)))
    what = (f"an ImageFolder knows only the class: the class (read off samples by {reader.what}) and colour "
            "statistics measured on every image (dominant hue, saturation, brightness) stand for the factors")
    return RunFactors(run, factors, FOLDER_ROLES, what, read)
