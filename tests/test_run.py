"""The run object: representations described, data split with what is known, models loaded lazily, and
every wrong checkpoint named before any model work."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from official_files import write_encoder_file, write_image_folder, write_rcdm_file
from rcdm_lib.config import load_settings
from rcdm_lib.representations import describe, release_file_key
from rcdm_lib.run import open_run
from rcdm_lib.settings import SettingsError

# the released flags shrunk (the layout is the release's: scale-shift norm, up/down-sampling resblocks)
SMALL_UNET = {"model_channels": 32, "num_res_blocks": 1, "channel_mult": [1, 2], "attention_resolutions": [8],
              "num_heads": 2}
HEAD_DIM = 16   # official_files.OUT: the published heads' widths, shrunk


def test_representations_are_described_from_the_release_naming():
    r = describe("dino_noise_head")
    assert (r.method, r.layer, r.supervised, r.label) == ("dino_noise", "head", False, "DINO+n projector")
    assert describe("supervised_backbone").supervised and describe("simclr_backbone").label == "SimCLR backbone"
    with pytest.raises(ValueError, match="<method>_backbone or <method>_head"):
        describe("my_vit")
    assert release_file_key("rcdm_ema_dino_trunk.pt") == "dino_backbone"
    assert release_file_key("/x/rcdm_ema_vicreg_head.pt") == "vicreg_head"
    assert release_file_key("rcdm_ema_supervised.pt") == "supervised_backbone"
    assert release_file_key("mine.pt") is None


def test_the_slot_run_knows_its_representations_data_and_records(tmp_path):
    run = open_run("smoke", chapter="01_conditional_samples", results_dir=tmp_path)
    assert run.names == ["supervised_backbone", "simclr_backbone", "simclr_head"] and run.left_out == {}
    assert run.select(supervised=False, layer="backbone") == ["simclr_backbone"]
    b = run.data.split("test").batch(range(4))
    assert b.images.shape == (4, 3, 16, 16) and b.labels.tolist() == b.factors["shape"].tolist()
    h = run.encode("simclr_backbone", b.images)
    x = run.sample("simclr_backbone", h[:2], n_per=2, steps=2, seed=0)
    assert x.shape == (2, 2, 3, run.image_size, run.image_size) and run.has_unconditional
    run.record("conditional_fidelity", "simclr_backbone/top1", 0.5, "d")
    res = json.loads((tmp_path / "01_conditional_samples.json").read_text())
    assert res["profile"] == "smoke" and res["results"][0]["value"] == 0.5


@pytest.fixture(scope="module")
def paper_files(tmp_path_factory):
    """One DINO encoder in its published format, its backbone and projector RCDMs in the release's format, and
    an ImageNet-layout folder (shared by the tests of this module)."""
    root = tmp_path_factory.mktemp("paper")
    unet = {**load_settings("imagenet128", check_files=False)["rcdm"]["unet"], **SMALL_UNET, "image_size": 16}
    return {"root": root, "data": write_image_folder(root / "imagenet"),
            "dino": write_encoder_file("dino", root),
            "dino_backbone": write_rcdm_file("dino_backbone", root, unet, 2048),
            "dino_head": write_rcdm_file("dino_head", root, unet, HEAD_DIM),
            "simclr_backbone": write_rcdm_file("simclr_backbone", root, unet, 2048)}


def _overlay(files, tmp_path, checkpoints: dict) -> str:
    body = {"data": {"root": str(files["data"]), "image_size": 16, "encoder_size": 32},
            "encoders": {"weights": {"dino": str(files["dino"])}},
            "rcdm": {"image_size": 16, "unet": SMALL_UNET, "checkpoints": checkpoints}}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def test_one_rcdm_per_representation_loaded_when_used_one_at_a_time(paper_files, tmp_path):
    f = paper_files
    settings = load_settings("imagenet128", _overlay(f, tmp_path, {"dino_backbone": str(f["dino_backbone"]),
                                                                    "dino_head": str(f["dino_head"])}))
    run = open_run(settings)
    assert run.names == ["dino_backbone", "dino_head"] and not run.has_unconditional
    assert run.left_out["supervised_backbone"] == "rcdm.checkpoints.supervised_backbone is not set"
    assert "simclr_backbone, simclr_head" in run.left_out_line()
    b = run.data.split("test").batch(range(3))      # val/ plays the test split; odd image modes decode to RGB
    assert b.images.shape == (3, 3, 32, 32) and b.factors is None and len(run.data.split("train")) == 6
    assert run.data.split("train").label_names == ["n01440764", "n01443537"]
    h = run.encode("dino_backbone", b.images)
    assert h.shape == (3, 2048) and run.encode("dino_head", b.images).shape == (3, HEAD_DIM)
    assert run.models._held is None                  # nothing built before it is used
    x = run.sample("dino_backbone", h[:2], n_per=2, steps=2, seed=0)
    assert x.shape == (2, 2, 3, 16, 16) and torch.isfinite(x).all()
    assert run.models._held[0] == "dino_backbone"
    run.sample("dino_head", run.encode("dino_head", b.images[:1]), n_per=1, steps=2, seed=0)
    assert run.models._held[0] == "dino_head"        # the backbone's RCDM was released


def test_a_checkpoint_for_another_representation_is_named_before_any_model_work(paper_files, tmp_path):
    f = paper_files
    # the release's SimCLR file given as DINO's, and DINO's projector file (16-d) as the backbone's
    renamed = f["root"] / "my_dino.pt"
    renamed.write_bytes(f["dino_head"].read_bytes())
    settings = load_settings("imagenet128", _overlay(f, tmp_path, {"dino_backbone": str(f["simclr_backbone"]),
                                                                    "dino_head": str(renamed)}))
    with pytest.raises(SettingsError) as e:
        open_run(settings)
    msg = str(e.value)
    assert "rcdm.checkpoints.dino_backbone names rcdm_ema_simclr_trunk.pt, the release's file for simclr_backbone" \
           in msg
    assert "rcdm.checkpoints.dino_head: my_dino.pt is conditioned on 16-d representations" not in msg  # it is 16-d
    settings = load_settings("imagenet128", _overlay(f, tmp_path, {"dino_backbone": str(renamed)}))
    with pytest.raises(SettingsError, match="rcdm.checkpoints.dino_backbone: my_dino.pt is conditioned on 16-d "
                                            "representations but the DINO backbone of encoders.weights.dino gives "
                                            "2048-d ones"):
        open_run(settings)


def test_an_export_trained_for_another_encoder_names_both_identities(paper_files, tmp_path):
    from rcdm_lib.unet import UNet, UNetConfig, save_unet

    f = paper_files
    export = f["root"] / "dino_backbone.safetensors"
    unet = {**load_settings("imagenet128", check_files=False)["rcdm"]["unet"], **SMALL_UNET, "image_size": 16}
    save_unet(export, UNet(UNetConfig(**unet, rep_dim=2048)),
              extra={"data": {"encoder": {"name": "dino", "layer": "backbone", "weights_sha256": "0" * 64}}})
    settings = load_settings("imagenet128", _overlay(f, tmp_path, {"dino_backbone": str(export)}))
    with pytest.raises(SettingsError, match=r"dino_backbone.safetensors\) was trained on another encoder: "
                                            r"weights_sha256 '0000"):
        open_run(settings)


def test_the_class_reader_of_an_image_folder_is_a_probe_that_says_what_it_reads(paper_files, tmp_path):
    from rcdm_lib.analysis.class_reader import class_reader

    f = paper_files
    run = open_run(load_settings("imagenet128", _overlay(f, tmp_path, {"dino_backbone": str(f["dino_backbone"])})))
    reader = class_reader(run, run.image_size, n_train=6)
    assert "linear probe on dino_backbone fitted on 6 train/ images" in reader.what
    assert "encoders.weights.supervised" in reader.what          # why not the supervised backbone
    b = run.data.split("val").batch(range(4))
    p = reader.probabilities(run.rcdm_view(b.images))
    assert p.shape == (4, 2) and torch.allclose(p.sum(1), torch.ones(4))
    assert 0.0 <= reader.accuracy(run.rcdm_view(b.images), b.labels) <= 1.0


def test_images_an_inversion_leaves_above_the_threshold_are_named():
    from types import SimpleNamespace

    from rcdm_lib.analysis.inversion_study import not_converged

    inv = SimpleNamespace(final_rel_distance=torch.tensor([0.01, 0.5, 0.03, 0.2]))
    assert not_converged(inv, 0.036) == [(1, 0.5), (3, pytest.approx(0.2))]


def test_the_fgsm_attack_set_takes_a_class_of_the_runs_data():
    from rcdm_lib.analysis.fgsm_study import attack_set, epsilon_grid

    run = open_run("smoke")
    atk = attack_set(run, None, 8)                     # default: the data's last class
    assert atk.target_name == run.data.split("test").label_names[-1] and len(atk.labels) == 8
    assert (atk.labels != atk.target).all()
    with pytest.raises(ValueError, match="'nope' is not a class of this run's data; expected one of .*'circle'"):
        attack_set(run, "nope", 8)
    assert epsilon_grid(0.3, 4, [0.05], [0.1]).tolist() == pytest.approx([0.0, 0.05, 0.1, 0.2, 0.3])


def test_the_unconditional_adm_gives_the_unconditional_rows_at_the_rcdm_resolution(paper_files, tmp_path):
    from official_files import SMALL_UNCONDITIONAL_FLAGS, write_unconditional_file, write_upsampler_file
    from rcdm_lib.sampling import sample_unconditional
    from rcdm_lib.unconditional import load_official_unconditional

    f = paper_files
    uncond = write_unconditional_file(tmp_path)                      # 32px, resized to the run's 16px
    overlay = _overlay(f, tmp_path, {"dino_backbone": str(f["dino_backbone"])})
    body = yaml.safe_load(open(overlay))
    body["unconditional"] = {"checkpoint": str(uncond)}          # the release's flags do not fit a shrunk file
    open(overlay, "w").write(yaml.safe_dump(body))
    with pytest.raises(SettingsError, match=r"256x256_diffusion_uncond.pt does not fit unconditional.flags "
                                            r"\(time_embed.0.weight: the flags give \[1024, 256\], the file has "
                                            r"\[128, 32\]"):
        open_run(load_settings("imagenet128", overlay))
    body["unconditional"]["flags"] = SMALL_UNCONDITIONAL_FLAGS
    open(overlay, "w").write(yaml.safe_dump(body))
    run = open_run(load_settings("imagenet128", overlay))
    assert run.has_unconditional and run.missing("unconditional") is None
    x = run.sample(None, n=3, n_per=2, steps=2, seed=0)
    assert x.shape == (3, 2, 3, 16, 16) and torch.isfinite(x).all() and run.models._held[0] is None
    # the same draw as the ADM's own 32px samples, resized
    model, diffusion = load_official_unconditional(uncond, SMALL_UNCONDITIONAL_FLAGS)
    full = sample_unconditional(model, diffusion.for_sampling(2), 3, n_per=2, seed=0)
    assert full.shape == (3, 2, 3, 32, 32)
    assert torch.allclose(run.rcdm_view(full.flatten(0, 1)).reshape(3, 2, 3, 16, 16), x, atol=1e-6)
    # an RCDM file and a class-conditional ADM are named before any model work
    flags = {"large_size": 64, "small_size": 16, "num_channels": 32, "num_res_blocks": 1, "attention_resolutions": "16",
             "class_cond": True, "learn_sigma": True, "num_heads": 2}
    for wrong, said in ((f["dino_backbone"], "is conditioned on a representation"),
                        (write_upsampler_file(tmp_path, flags), "is class-conditional")):
        body["unconditional"]["checkpoint"] = str(wrong)
        open(overlay, "w").write(yaml.safe_dump(body))
        with pytest.raises(SettingsError, match=f"unconditional.checkpoint: .* {said}"):
            open_run(load_settings("imagenet128", overlay))


def test_without_an_unconditional_model_the_rows_name_the_key(paper_files, tmp_path):
    f = paper_files
    run = open_run(load_settings("imagenet128", _overlay(f, tmp_path, {"dino_backbone": str(f["dino_backbone"])})))
    assert run.missing("unconditional") == "left out: unconditional rows (unconditional.checkpoint is not set)"
    with pytest.raises(ValueError, match="set unconditional.checkpoint"):
        run.sample(None, n=1, steps=2)
