"""What chapter 13 measures of an upsampler (the paper's Fig. 14): detail added, content kept, on real test
images and on RCDM samples.

    pairs = test_pairs(run, sr, n)                         # the run's test images at L and S (and the upsampler's rep)
    numbers = superres_numbers(sr_real, truth, low, samples, sr_samples, S)
    numbers.update(shape_numbers(run, sr, labels, sr_real, bilinear, truth, samples, sr_samples))
    detail, content = superres_verdicts(numbers, list(samples), n_real, n_images)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from rcdm_lib import claims
from rcdm_lib.superres.data import folder_pairs, shapes_pairs
from rcdm_lib.superres.metrics import consistency_psnr, input_retrieval, psnr, restored_detail
from rcdm_lib.superres.model import upsample_low_res
from rcdm_lib.superres.official import one_hot_classes


@dataclass
class TestPairs:
    high: torch.Tensor            # [N, 3, L, L] in [-1, 1]
    low: torch.Tensor             # [N, 3, S, S]
    labels: torch.Tensor          # [N]
    rep: torch.Tensor | None      # what the upsampler is conditioned on (the released ones: one-hot classes)

    def rep_rows(self, n: int) -> torch.Tensor | None:
        return None if self.rep is None else self.rep[:n]


def test_pairs(run, sr, n: int) -> TestPairs:
    """The run's test images at the upsampler's two sizes: the built-in shapes resized (nothing to do when the
    dataset is rendered at L), or the val/ folder's centre crops (the released upsamplers are class-conditional)."""
    S, L = sr.small_size, sr.large_size
    d = run.settings["data"]
    if run.data.has_factors:
        length = (d.get("lengths") or {}).get("test")
        hi8, lo8, factors = shapes_pairs("test", d["size"], d.get("seed", 0), L, S, length, range(n))
        return TestPairs(hi8.float() / 127.5 - 1, lo8.float() / 127.5 - 1, factors["shape"].long(), None)
    high, low, labels = folder_pairs(Path(d["root"]) / "val", L, S, n)
    return TestPairs(high, low, labels, one_hot_classes(labels) if sr.official else None)


def superres_numbers(sr_real, truth, low, samples: dict, sr_samples: dict, small_size: int) -> dict:
    """{key: (value, description)}: PSNR, consistency with the input, restored detail and input retrieval of
    super-resolved real images [N, 3, L, L] (truth at L, low at S), and of each representation's RCDM samples
    (`samples[name]` [M, 3, S, S] and their super-resolved `sr_samples[name]`)."""
    L = truth.shape[-1]
    bilinear = upsample_low_res(low, (L, L)).clamp(-1, 1)
    n = {"real/sr_psnr_db": (float(psnr(sr_real, truth).mean()),
                             "PSNR of the super-resolved image vs the true one (dB)"),
         "real/bilinear_psnr_db": (float(psnr(bilinear, truth).mean()),
                                   "PSNR of bilinear upsampling vs the true image (dB)"),
         "real/sr_consistency_psnr_db": (float(consistency_psnr(sr_real, low).mean()),
                                         "downsampled super-resolved image vs its low-res input (dB)"),
         "real/sr_detail": (restored_detail(sr_real, truth, small_size),
                            "high-frequency energy of super-resolved real images / of the true ones"),
         "real/bilinear_detail": (restored_detail(bilinear, truth, small_size),
                                  "high-frequency energy of bilinear upsampling / of the true images"),
         "real/sr_input_retrieval": (input_retrieval(sr_real, low),
                                     f"downsampled super-resolved image nearest to its own input among {len(low)}")}
    for name, x in samples.items():
        y = sr_samples[name]
        n[f"{name}/sr_consistency_psnr_db"] = (float(consistency_psnr(y, x).mean()),
                                               f"{name} RCDM samples: downsampled super-resolution vs the sample (dB)")
        n[f"{name}/sr_detail"] = (restored_detail(y, truth, small_size),
                                  f"{name} RCDM samples: high-frequency energy after super-resolution / real images'")
        n[f"{name}/bilinear_detail"] = (restored_detail(upsample_low_res(x, (L, L)).clamp(-1, 1), truth, small_size),
                                        f"{name} RCDM samples: high-frequency energy after bilinear / real images'")
        n[f"{name}/sr_input_retrieval"] = (input_retrieval(y, x), f"{name} RCDM samples: downsampled "
                                           f"super-resolution nearest to its own sample among {len(x)}")
    return n


def shape_numbers(run, sr, labels, real: dict, samples: dict, sr_samples: dict) -> tuple[dict, str | None]:
    """({key: (value, description)}, None) on the built-in data: a shape classifier at each resolution reads real
    images (`real`: name -> [N, 3, L, L]) and whether RCDM samples keep their shape through super-resolution;
    ({}, the line that says why not) elsewhere."""
    from rcdm_lib.config import repo_path
    from rcdm_lib.metrics import encoder_view

    sup = repo_path((run.settings.get("encoders") or {}).get("dir") or ".") / "supervised.safetensors"
    if not run.data.has_factors or not sup.is_file():
        return {}, ("left out: the shape-kept numbers (they read the built-in data's shape with its supervised "
                    "encoder; this run's data has classes only)")
    from rcdm_lib.analysis.class_reader import class_reader
    from rcdm_lib.encoders import load_tiny_encoder
    from rcdm_lib.training.quality import classify

    S, L, E = sr.small_size, sr.large_size, run.encoder_size
    reader_S = class_reader(run, S)                       # the classifier that scores RCDM training, at S
    clf_L = load_tiny_encoder(sup).eval()                 # at L = the dataset size: the supervised encoder's head

    def shape_L(x):
        return classify(clf_L, encoder_view(x, E)).argmax(1)

    out = {f"real/{name}_shape_accuracy": (float((shape_L(x) == labels[:len(x)]).float().mean()),
                                           f"{L}px shape classifier on {name} real images: accuracy")
           for name, x in real.items()}
    for name, x in samples.items():
        before = reader_S.predict(x)
        out[f"{name}/shape_kept"] = (float((shape_L(sr_samples[name]) == before).float().mean()),
                                     f"{name} RCDM samples: same shape read before ({S}px) and after "
                                     f"super-resolution ({L}px)")
    return out, None


def superres_verdicts(numbers: dict, names: list[str], n_real: int, n_images: int):
    """(detail, content) verdicts: the upsampler adds real-like detail (|log| of the high-frequency energy ratio to
    real images below bilinear's, for every group) and keeps the content (each output's downsample nearest to its
    own input more often than chance, for every group)."""
    groups = {"real test images": "real", **{f"{name} samples": name for name in names}}
    detail = claims.verdict_from_comparisons(
        {g: (abs(math.log(numbers[f"{k}/sr_detail"][0])), abs(math.log(numbers[f"{k}/bilinear_detail"][0])))
         for g, k in groups.items()},
        expect="lower", what="|log| of the high-frequency energy relative to real images",
        against="bilinear upsampling",
        paper="the upsampler adds the detail that the low resolution lacks", need="all")
    chance = {"real": 1 / n_real, **{name: 1 / n_images for name in names}}
    content = claims.verdict_from_comparisons(
        {g: (numbers[f"{k}/sr_input_retrieval"][0], chance[k]) for g, k in groups.items()},
        expect="higher", what="the fraction of outputs whose downsample is nearest to their own input",
        against="chance", paper="super-resolution keeps the sample's content", need="all")
    return detail, content
