"""The studies chapters 04, 08 and 11 run on: the FID floor and its verdict, the factors of a run's data (known on the
shapes data, the class and measured colour on an ImageFolder), and the backbone/projector pairs of a run."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from official_files import write_encoder_file, write_image_folder, write_rcdm_file
from rcdm_lib.analysis.fid_study import FLOOR, UNCONDITIONAL, FidRows, FidStudy, real_sets
from rcdm_lib.analysis.run_factors import GRAY, HUES, colour_statistics, run_factors
from rcdm_lib.config import load_settings
from rcdm_lib.run import open_run

SMALL_UNET = {"model_channels": 32, "num_res_blocks": 1, "channel_mult": [1, 2], "attention_resolutions": [8],
              "num_heads": 2}


def solid(rgb, size=8):
    """One image [3, size, size] in [-1, 1] of the colour rgb (0..255)."""
    return (torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1)[:, None, None].expand(3, size, size)


def test_colour_statistics_name_the_hue_saturation_and_brightness_of_known_colours():
    images = torch.stack([solid(c) for c in ((255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255),
                                              (255, 0, 255), (128, 128, 128), (255, 128, 128))])
    s = colour_statistics(images)
    names = (HUES + (GRAY,))
    assert [names[i] for i in s["color"]] == ["red", "yellow", "green", "cyan", "blue", "magenta", "gray", "red"]
    # saturation (max - min) / max and brightness, the mean of the [0, 1] channels
    assert torch.allclose(s["saturation"], torch.tensor([1, 1, 1, 1, 1, 1, 0, 127 / 255]), atol=1e-3)
    assert torch.allclose(s["brightness"], torch.tensor([1 / 3, 2 / 3, 1 / 3, 2 / 3, 1 / 3, 2 / 3, 128 / 255,
                                                         (255 + 256) / 765]), atol=2e-3)
    # leading axes are kept: [N, K, 3, H, W] -> [N, K]
    assert colour_statistics(images.view(2, 4, 3, 8, 8))["color"].shape == (2, 4)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    unet = {**load_settings("imagenet128", check_files=False)["rcdm"]["unet"], **SMALL_UNET, "image_size": 16}
    overlay = root / "mine.yaml"
    overlay.write_text(yaml.safe_dump({
        "data": {"root": str(write_image_folder(root / "imagenet")), "image_size": 16, "encoder_size": 32},
        "encoders": {"weights": {"dino": str(write_encoder_file("dino", root))}},
        "rcdm": {"image_size": 16, "unet": SMALL_UNET,
                 "checkpoints": {"dino_backbone": str(write_rcdm_file("dino_backbone", root, unet, 2048))}}}))
    return open_run(load_settings("imagenet128", overlay), chapter="04_fid_is", results_dir=root / "results")


def test_an_image_folders_factors_are_its_class_and_measured_colour(folder_run):
    f = run_factors(folder_run, n_train=6)
    assert [x.name for x in f.factors] == ["class", "color", "saturation", "brightness"]
    assert f.roles.swap == "color" and "linear probe on dino_backbone" in f.what
    b = folder_run.data.split("val").batch(range(6))
    truth = f.truth(b)
    assert truth["class"].tolist() == b.labels.tolist()
    # the pictures are noise around red, green or blue (official_files.HUE_RGB)
    assert set(truth["color"].tolist()) <= {HUES.index("red"), HUES.index("green"), HUES.index("blue")}
    assert len(set(truth["color"].tolist())) == 3
    score = f.score(b)      # colour is measured the same way on real images: its reading is exact
    assert score["color"]["value"] == 1.0 and score["saturation"]["value"] == pytest.approx(1.0)
    read = f.read(torch.stack([folder_run.rcdm_view(b.images)] * 2, 1))     # [6, 2, 3, S, S] -> [6, 2]
    assert read["class"].shape == (6, 2) and read["color"].shape == (6, 2)


def test_the_fid_floor_compares_two_disjoint_halves_of_val(folder_run):
    ref, cond, what = real_sets(folder_run, 10)           # val/ has 6 images: halves of 3
    assert ref.shape == (3, 3, 16, 16) and cond.shape == (3, 3, 32, 32) and "capped from 10" in what
    val = folder_run.data.split("val")
    first = folder_run.rcdm_view(val.batch(range(3)).images)
    assert torch.equal(ref, first)
    assert not any(torch.equal(folder_run.rcdm_view(c[None])[0], r) for c in cond for r in ref)   # disjoint
    study = FidStudy(folder_run, "inception-v3-compat", steps=2)   # the settings give no Inception file
    rows = study.rows(4)
    assert list(rows.samples) == [FLOOR] and study.table(rows) is None
    assert study.missing == "left out: every FID and IS number (metrics.inception_weights is not set)"
    assert "metrics.inception_weights is not set" in study.record_verdict(rows, None, ["dino_backbone"])


def test_the_fid_verdict_counts_a_difference_only_beyond_the_floor(tmp_path):
    run = open_run("smoke", chapter="04_fid_is", results_dir=tmp_path)
    study = FidStudy(run, "tiny-supervised", steps=2)
    rows = FidRows(64, torch.zeros(1), {}, "made up")
    row = "RCDM | {}, real representations"

    def verdict(floor, a, b):
        table = {FLOOR: {"fid": floor}, UNCONDITIONAL: {"fid": 2.0}, row.format("supervised_backbone"): {"fid": a},
                 row.format("simclr_backbone"): {"fid": b}}
        study.record_verdict(rows, table, ["supervised_backbone", "simclr_backbone"])
        return json.loads((tmp_path / "04_fid_is.json").read_text())["verdicts"][0]

    assert verdict(0.1, 1.0, 1.5)["agrees"]                 # both 0.5 and 1.0 below, beyond a 0.1 floor
    assert not verdict(0.6, 1.0, 1.5)["agrees"]             # only 1 of 2 beyond a 0.6 floor
    res = json.loads((tmp_path / "04_fid_is.json").read_text())["results"]
    assert {r["key"]: r["value"] for r in res}["floor/fid"] == 0.6


def test_a_run_pairs_each_methods_backbone_with_its_projector():
    run = open_run("smoke")
    assert run.backbone_projector_pairs() == [("simclr", "simclr_backbone", "simclr_head")]
