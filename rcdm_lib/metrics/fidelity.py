"""FID and Inception Score through torch-fidelity (paper Table 2a).

torch-fidelity computes both metrics from features: FID from the Gaussian statistics of two
feature sets, IS from class logits. Which network produces the features is a choice that every
table must name:

- imagenet128: torch-fidelity's standard `inception-v3-compat` extractor (the TF-Inception
  port used by the literature), from a local copy of its weights (`weights_path=`, the settings'
  `metrics.inception_weights`). torch-fidelity itself would unpickle that file, or its download in
  the torch hub cache, with `weights_only=False`, so a file could run code: we load it here with
  `weights_only=True`, check that it holds tensors only, and hand torch-fidelity a copy we wrote.
- tiny / smoke: an extractor registered with torch-fidelity from a project encoder
  (`register_encoder_extractor`): features = the encoder's representation, logits = its
  classifier. Numbers from it are tiny-scale and not comparable with the paper's.

    name = register_encoder_extractor("tiny-supervised", enc, logits=enc.head, input_size=32)
    r = fidelity_metrics(real_images, fake_images, extractor=name)   # {"fid", "is_mean", ...}
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

INCEPTION = "inception-v3-compat"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SOURCE = ("torch-fidelity's URL_INCEPTION_V3 (github.com/toshas/torch-fidelity releases, "
                    f"{INCEPTION_FILE})")


def checked_inception_weights(path, folder) -> Path:
    """The Inception weights at `path`, loaded with weights_only=True (a file whose unpickling would run code is
    refused), checked to hold tensors only, and written again into `folder` for torch-fidelity to load."""
    from rcdm_lib.user_files import read_state_dict

    expected = f"{INCEPTION_SOURCE}, a state dict of tensors (set metrics.inception_weights to it)"
    sd = read_state_dict(path, "Inception weights", expected, wrappers=(), prefix="")
    out = Path(folder) / INCEPTION_FILE
    torch.save({str(k): v for k, v in sd.items()}, out)
    return out


def frechet_distance(features_1, features_2) -> float:
    """FID between two feature sets [N1 x D], [N2 x D], by torch-fidelity's own formula (float64)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    f1 = torch.as_tensor(np.asarray(features_1), dtype=torch.float64)
    f2 = torch.as_tensor(np.asarray(features_2), dtype=torch.float64)
    if f1.dim() != 2 or f2.dim() != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sets must be [N1, D] and [N2, D]; got {list(f1.shape)} and {list(f2.shape)}")
    if min(f1.shape[0], f2.shape[0]) < 2:
        raise ValueError("FID needs at least 2 samples per set to estimate a covariance")
    s1, s2 = fid_features_to_statistics(f1), fid_features_to_statistics(f2)
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def inception_score(logits, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    """IS (mean, std over `splits`) from class logits [N x C], by torch-fidelity's own formula."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    logits = torch.as_tensor(logits).double()
    splits = max(1, min(int(splits), logits.shape[0]))
    r = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=seed)
    return float(r[KEY_METRIC_ISC_MEAN]), float(r[KEY_METRIC_ISC_STD])


class ImageTensorDataset(Dataset):
    """Images [N x 3 x H x W] in [-1, 1] (or uint8) served as uint8 [3 x H x W], torch-fidelity's input."""

    def __init__(self, images: torch.Tensor):
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [N, 3, H, W]; got {list(images.shape)}")
        if images.dtype != torch.uint8:
            images = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        self.images = images.cpu()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def _device_of(fn) -> torch.device:
    if isinstance(fn, torch.nn.Module):
        p = next(fn.parameters(), None)
        if p is not None:
            return p.device
    return torch.device("cpu")


def register_encoder_extractor(name: str, encoder: Callable, logits: Callable | None = None,
                               input_size: int | None = None) -> str:
    """Register `encoder` (images [N, 3, E, E] in [-1, 1] -> [N, D]) as a torch-fidelity feature
    extractor called `name`; `logits` (features -> [N, C]) enables IS. Returns `name`.

    torch-fidelity hands the extractor uint8 batches at the input's resolution; they are scaled to
    [-1, 1] and resized (bilinear, antialiased) to `input_size`. Registering a name again replaces it.
    """
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    provided = ("features", "logits") if logits is not None else ("features",)

    class EncoderExtractor(FeatureExtractorBase):
        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            # held outside the module tree: torch-fidelity's .cuda() on the extractor must not
            # move the caller's encoder; batches go to the encoder's device instead
            self._fns = (encoder, logits)

        @staticmethod
        def get_provided_features_list():
            return provided

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            if metric == "isc":
                if logits is None:
                    raise ValueError(f"extractor {name!r} has no logits; register it with logits=... to compute IS")
                return "logits"
            return "features"

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, input_size or 32, input_size or 32, dtype=torch.uint8)

        def forward(self, x):
            enc, logits_fn = self._fns
            x = x.to(_device_of(enc)).float() / 127.5 - 1
            if input_size is not None and x.shape[-1] != input_size:
                x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", antialias=True,
                                  align_corners=False)
            feats = enc(x)
            out = {"features": feats.double()}
            if logits_fn is not None:
                out["logits"] = logits_fn(feats).double()
            return tuple(out[k] for k in self.features_list)

    FEATURE_EXTRACTORS_REGISTRY.pop(name, None)
    register_feature_extractor(name, EncoderExtractor)
    return name


def fidelity_metrics(real: torch.Tensor, fake: torch.Tensor, extractor: str = INCEPTION, isc: bool = True,
                     isc_splits: int = 10, batch_size: int = 64, weights_path: str | None = None,
                     cuda: bool | None = None) -> dict:
    """FID(fake, real) and IS(fake) with torch-fidelity; images [N x 3 x H x W] in [-1, 1] or uint8.

    Returns {"fid", "is_mean", "is_std" (when isc), "extractor", "n_real", "n_fake"}.
    The Inception extractor needs `weights_path` (nothing is downloaded; see the module docstring).
    """
    import torch_fidelity

    cuda = torch.cuda.is_available() if cuda is None else cuda
    kwargs = dict(input1=ImageTensorDataset(fake), input2=ImageTensorDataset(real), cuda=cuda, fid=True,
                  isc=isc, feature_extractor=extractor, batch_size=batch_size, verbose=False,
                  save_cpu_ram=True, cache=False, isc_splits=max(1, min(isc_splits, fake.shape[0])))
    if extractor == INCEPTION and weights_path is None:
        raise FileNotFoundError(f"{INCEPTION} needs a local copy of its weights: set metrics.inception_weights "
                                f"(weights_path=) to {INCEPTION_SOURCE}, or register a project encoder with "
                                "register_encoder_extractor")
    with tempfile.TemporaryDirectory(prefix="rcdm_inception_") as tmp:
        if extractor == INCEPTION:
            kwargs["feature_extractor_weights_path"] = str(checked_inception_weights(weights_path, tmp))
        try:
            r = torch_fidelity.calculate_metrics(**kwargs)
        except RuntimeError as e:   # a tensors-only file of another network: the strict load names the keys
            if extractor == INCEPTION and "state_dict" in str(e):
                raise ValueError(f"Inception weights {weights_path} do not fit {INCEPTION}: "
                                 f"{str(e).splitlines()[0]}; expected {INCEPTION_SOURCE}") from None
            raise
    out = {"fid": float(r["frechet_inception_distance"]), "extractor": extractor,
           "n_real": int(real.shape[0]), "n_fake": int(fake.shape[0])}
    if isc:
        out["is_mean"] = float(r["inception_score_mean"])
        out["is_std"] = float(r["inception_score_std"])
    return out
