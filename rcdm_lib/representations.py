"""What a representation is: its method, its layer, whether its encoder was trained with labels.

Chapters never read this off a name: they ask the run (`run.representations[name]`). Names keep
the release's form, `<method>_<layer>` with layer `backbone` (the pooled trunk) or `head` (the
projector); the prose says backbone and projector.

    >>> describe("dino_noise_head")
    Representation(name='dino_noise_head', method='dino_noise', layer='head', supervised=False)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LAYERS = ("backbone", "head")
CUSTOM = "custom"   # the layer of a user's own encoder (encoders.custom.<name>): what it returns
METHOD_LABELS = {"supervised": "supervised", "simclr": "SimCLR", "barlow": "Barlow Twins", "vicreg": "VICReg",
                 "dino": "DINO", "dino_noise": "DINO+n", "dino_vit": "DINO ViT", "swav": "SwAV"}
SUPERVISED_METHODS = ("supervised",)
# The representations of the official RCDM release, in its order (rcdm_ema_{method}_{trunk|head}.pt,
# rcdm_ema_supervised.pt), and SwAV's backbone for the IC-GAN comparison (chapter 15).
RELEASED = ("supervised_backbone", "simclr_backbone", "simclr_head", "barlow_backbone", "barlow_head",
            "vicreg_backbone", "vicreg_head", "dino_backbone", "dino_head", "swav_backbone")


@dataclass(frozen=True)
class Representation:
    name: str
    method: str          # the encoder's training method: supervised, simclr, barlow, vicreg, dino, dino_noise, swav
    layer: str           # "backbone" (pooled trunk) or "head" (projector; for supervised, the classifier)
    supervised: bool     # trained with labels
    beside: bool = False  # a model shown beside the run's own (a custom encoder, rcdm.beside): out of the paper's
    #                       comparisons (supervised vs SSL backbones, backbone vs projector), in every table

    @property
    def label(self) -> str:
        """How prose names it: 'DINO backbone', 'SimCLR projector', 'DINO ViT backbone (own RCDM)'."""
        if self.layer == CUSTOM:
            return self.name
        label = f"{METHOD_LABELS.get(self.method, self.method)} {'backbone' if self.layer == 'backbone' else 'projector'}"
        return f"{label} (own RCDM)" if self.beside else label


def describe(name: str) -> Representation:
    """The representation a name of the release form `<method>_<backbone|head>` stands for."""
    method, _, layer = name.rpartition("_")
    if layer not in LAYERS or not method:
        raise ValueError(f"representation name {name!r} is not of the form <method>_backbone or <method>_head")
    return Representation(name, method, layer, method in SUPERVISED_METHODS)


def describe_custom(name: str) -> Representation:
    """A user's own encoder of `encoders.custom`: its own method, its own layer, self-supervised as far as the run
    knows (the paper's comparisons of backbones with projectors and of supervised with SSL leave it out; every
    table over the run's representations has it)."""
    return Representation(name, name, CUSTOM, False, beside=True)


def describe_beside(name: str, method: str, layer: str = "backbone") -> Representation:
    """A single-representation RCDM of `rcdm.beside.<name>`, on the encoder of `method` (a tiny or published one):
    shown beside the run's own representations, left out of the paper's comparisons as a custom encoder is."""
    if layer not in LAYERS:
        raise ValueError(f"rcdm.beside.{name}.layer is {layer!r}; expected one of {LAYERS}")
    return Representation(name, method, layer, method in SUPERVISED_METHODS, beside=True)


_RELEASE_FILE = re.compile(r"rcdm_ema_(?P<method>[a-z]+?)(?:_(?P<part>trunk|head))?\.pt$")


def release_file_key(path) -> str | None:
    """The representation an official RCDM file is for, read from its release file name
    (`rcdm_ema_dino_trunk.pt` -> dino_backbone, `rcdm_ema_supervised.pt` -> supervised_backbone); None for
    another name."""
    m = _RELEASE_FILE.search(Path(path).name)
    if not m:
        return None
    return f"{m['method']}_{'head' if m['part'] == 'head' else 'backbone'}"
