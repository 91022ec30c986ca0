"""The chapters under imagenet128 through a user's --config: files in the official formats with random weights
(the published DINO ResNet-50, the release's RCDM layout at shrunk flags) and an ImageNet-layout folder."""
from __future__ import annotations

import json

import pytest
import yaml

from official_files import (HID, OUT, SMALL_UNCONDITIONAL_FLAGS, write_encoder_file, write_icgan_file,
                            write_image_folder, write_inception_file, write_rcdm_file, write_unconditional_file,
                            write_upsampler_file)
from rcdm_lib import pipeline
from rcdm_lib.config import load_settings

SMALL_UNET = {"model_channels": 32, "num_res_blocks": 1, "channel_mult": [1, 2], "attention_resolutions": [8],
              "num_heads": 2}
# every chapter's counts shrunk to a code-path check (the profile's are the paper's)
SMALL_COUNTS = {
    "01_conditional_samples": {"n_images": 2, "n_per": 2, "steps": 2},
    "02_out_of_distribution": {"n_per": 1, "steps": 2},
    "03_interpolation": {"n_alpha": 3, "n_noise_rows": 1, "steps": 2},
    "04_fid_is": {"n_verdict": 3, "n_samples": 3, "n_train": 4, "isc_splits": 1, "steps": 2, "icgan_clusters": 2,
                  "sampler_slots": ["dino_backbone"]},
    "05_rank_mrr": {"pool_size": 6, "n_cond": 3, "n_per": 1, "steps": 2},
    "06_neighbours_spread": {"n_images": 4, "n_per": 2, "n_train": 6, "k": 2, "steps": 2},
    "07_squared_distances": {"n_images": 4, "n_per": 2, "n_pool": 6, "n_train": 6, "steps": 2},
    "08_backbone_projector_augmentations": {"n_images": 3, "n_show": 2, "n_per": 2, "n_aug_images": 2,
                                            "probe_train": 6, "steps": 2},
    "09_class_means_unconditional": {"n_train": 6, "n_classes_shown": 2, "n_per": 2, "n_uncond": 2, "steps": 2},
    "10_adversarial": {"probe_train": 6, "n_attack": 3, "n_eps": 3, "eps_show": [0.0, 0.063], "eps_decode": [0.063],
                       "n_decode": 2, "n_per": 1, "steps": 2},
    "11_manipulation": {"n_bank": 6, "k": 3, "threshold": 2, "n_pairs": 2, "n_triplets": 1, "n_show": 1, "n_per": 1,
                        "probe_train": 6, "widget_images": 1, "widget_thresholds": [2], "steps": 2},
    "12_inversion_jacobians": {"n_images": 2, "iterations": 3, "n_per": 1, "n_dims": 2, "steps": 2, "n_show": 2},
    "13_super_resolution": {"n_images": 2, "n_real": 2, "n_show": 2, "rcdm_steps": 2, "sr_steps": 2},
    "14_methods_at_a_glance": {"diffusion_steps": 20, "match_steps": 20, "n_traj": 2, "n_stats": 50},
    "15_icgan_distances": {"n_images": 3, "n_per": 2, "n_pool": 6, "n_train": 6, "n_show": 2, "steps": 2},
}
NO_REPRESENTATIONS = {"14_methods_at_a_glance"}   # a 2-D toy: the same at every scale
CHAPTERS = sorted(SMALL_COUNTS)


@pytest.fixture(scope="module")
def dino_only(tmp_path_factory):
    """Acceptance 2's overlay: one representation, the DINO backbone (its encoder file, its checkpoint, the data),
    written the way a user would, with paths relative to the overlay's folder."""
    root = tmp_path_factory.mktemp("dino-only")
    unet = {**load_settings("imagenet128", check_files=False)["rcdm"]["unet"], **SMALL_UNET, "image_size": 16}
    write_image_folder(root / "imagenet")
    enc = write_encoder_file("dino", root)
    ckpt = write_rcdm_file("dino_backbone", root, unet, 2048)
    overlay = root / "dino_only.yaml"
    overlay.write_text(yaml.safe_dump({
        "data": {"root": "imagenet", "image_size": 16, "encoder_size": 32},
        "encoders": {"weights": {"dino": enc.name}},
        "rcdm": {"image_size": 16, "unet": SMALL_UNET, "checkpoints": {"dino_backbone": ckpt.name}},
        "cache_dir": str(root / "cache"),
        "notebooks": SMALL_COUNTS}))
    return overlay


@pytest.fixture(scope="module")
def full_overlay(tmp_path_factory):
    """Acceptance 1's overlay: the six published encoders, the release's RCDM files for the nine representations and
    SwAV's backbone, the IC-GAN generator, an ADM upsampler and torch-fidelity's Inception file, every one in its
    official format with random weights at shrunk sizes, and an ImageNet-layout folder."""
    root = tmp_path_factory.mktemp("full")
    unet = {**load_settings("imagenet128", check_files=False)["rcdm"]["unet"], **SMALL_UNET, "image_size": 16}
    write_image_folder(root / "imagenet")
    weights = {m: write_encoder_file(m, root, seed=i).name
               for i, m in enumerate(("supervised", "dino", "simclr", "barlow", "vicreg", "swav"))}
    keys = ("supervised_backbone", "simclr_backbone", "simclr_head", "barlow_backbone", "barlow_head",
            "vicreg_backbone", "vicreg_head", "dino_backbone", "dino_head", "swav_backbone")
    checkpoints = {k: write_rcdm_file(k, root, unet, 2048 if k.endswith("backbone") else OUT).name for k in keys}
    flags = {"large_size": 64, "small_size": 16, "num_channels": 32, "num_res_blocks": 1, "attention_resolutions": "16",
             "class_cond": True, "learn_sigma": True, "num_heads": 2, "resblock_updown": True,
             "use_scale_shift_norm": True, "diffusion_steps": 1000, "noise_schedule": "linear"}
    overlay = root / "paper.yaml"
    overlay.write_text(yaml.safe_dump({
        "data": {"root": "imagenet", "image_size": 16, "encoder_size": 32},
        "encoders": {"weights": weights},
        "rcdm": {"image_size": 16, "unet": SMALL_UNET, "checkpoints": checkpoints},
        "icgan": {"weights": write_icgan_file(root).name},
        "superres": {"checkpoint": write_upsampler_file(root, flags).name, "flags": flags},
        "metrics": {"inception_weights": write_inception_file(root).name},
        "unconditional": {"checkpoint": write_unconditional_file(root).name, "flags": SMALL_UNCONDITIONAL_FLAGS},
        "cache_dir": str(root / "cache"),
        "notebooks": SMALL_COUNTS}))
    assert HID > OUT   # the heads' widths: projector representations are OUT-d
    return overlay


def run_chapters(overlay, book) -> dict[str, str]:
    """Execute every chapter of CHAPTERS under imagenet128 with `overlay` into `book`; a chapter that raises fails
    the test. Returns what each chapter on representations printed."""
    settings = load_settings("imagenet128", overlay)
    texts = {}
    for name in CHAPTERS:
        pipeline.run_notebooks(settings, only=name, book_dir=book, cache_dir=book.parent / "cache", log=lambda s: None)
        nb = json.loads((book / f"{name}.ipynb").read_text())
        errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        if name not in NO_REPRESENTATIONS:
            texts[name] = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    return texts


@pytest.mark.slow
def test_every_chapter_runs_with_one_representation_and_says_what_is_left_out(dino_only, tmp_path):
    book = tmp_path / "book"
    for name, text in run_chapters(dino_only, book).items():
        assert "left out: supervised_backbone, simclr_backbone" in text and "rcdm.checkpoints.<name> is not set" in text
        assert "profile 'imagenet128': 1 representation, RCDM at 16px" in text, name
    res = json.loads((book / "_results" / "05_rank_mrr.json").read_text())
    assert res["profile"] == "imagenet128" and [r["key"] for r in res["results"]] == ["dino_backbone/mrr",
                                                                                       "dino_backbone/top1"]
    assert "imagenet128" in (book / "claims.md").read_text()


@pytest.mark.slow
def test_every_chapter_runs_on_the_papers_files_and_the_claims_page_says_imagenet128(full_overlay, tmp_path):
    book = tmp_path / "book"
    for name, text in run_chapters(full_overlay, book).items():
        assert "profile 'imagenet128': 10 representations" in text, (name, text[:300])
        assert "is not set" not in text, (name, text[:600])
    recorded = {f.stem: json.loads(f.read_text()) for f in (book / "_results").glob("*.json")}
    assert all(r["profile"] == "imagenet128" for r in recorded.values())
    # the comparisons the one-representation run could not make are made here
    assert any(r["key"] == "swav_backbone/rcdm_over_icgan" for r in recorded["15_icgan_distances"]["results"])
    assert recorded["10_adversarial"]["verdicts"] and recorded["05_rank_mrr"]["verdicts"]
    assert any(r["key"].startswith("real/sr_") for r in recorded["13_super_resolution"]["results"])
    page = (book / "claims.md").read_text()
    assert "imagenet128" in page and "swav_backbone/rcdm_over_icgan" in page
