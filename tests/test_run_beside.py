"""rcdm.beside: single-representation RCDMs shown beside the run's own (at tiny, the DINO ViT's RCDM and the
ResNet DINO one of the same recipe beside the slot model), out of the paper's comparisons, each pairing checked."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rcdm_lib.config import load_settings
from rcdm_lib.settings import SettingsError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def simclr_export(tmp_path, smoke_models) -> Path:
    """A 2-step single-representation RCDM of the smoke profile's SimCLR backbone (scripts/train.py --encoder)."""
    export = tmp_path / "simclr_one.safetensors"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--profile", "smoke", "--encoder",
                           "simclr", "--steps", "2", "--threads", "1", "--no-progress", "--out", str(tmp_path / "run"),
                           "--export", str(export)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return export


def _settings(tmp_path: Path, beside: dict):
    overlay = tmp_path / "beside.yaml"
    overlay.write_text(yaml.safe_dump({"rcdm": {"beside": beside}}))
    return load_settings("smoke", overlay)


def test_a_model_beside_the_slot_model_is_a_row_of_every_table_and_of_no_verdict(tmp_path, simclr_export):
    from rcdm_lib.run import open_run

    run = open_run(_settings(tmp_path, {"simclr_one": {"encoder": "simclr", "checkpoint": simclr_export.name}}))
    rep = run.representations["simclr_one"]
    assert run.names[-1] == "simclr_one" and rep.beside and (rep.method, rep.layer) == ("simclr", "backbone")
    assert rep.label == "SimCLR backbone (own RCDM)" and run.representations["simclr_backbone"].label == \
        "SimCLR backbone"
    sup, ssl = run.supervised_and_ssl_backbones()
    assert sup == "supervised_backbone" and ssl == ["simclr_backbone"]        # the slot model's, not the one beside
    assert [(m, b) for m, b, _ in run.backbone_projector_pairs()] == [("simclr", "simclr_backbone")]
    assert list(run.for_verdict({n: 0.5 for n in run.names})) == [n for n in run.names if n != "simclr_one"]
    x = torch.rand(3, 3, run.encoder_size, run.encoder_size) * 2 - 1
    h = run.encode("simclr_one", x)
    assert torch.equal(h, run.encode("simclr_backbone", x))                    # the same encoder as the slot's
    assert run.sample("simclr_one", h, n_per=2, steps=2).shape == (3, 2, 3, run.image_size, run.image_size)


def test_a_model_beside_paired_with_another_encoder_or_unset_is_named(tmp_path, simclr_export):
    from rcdm_lib.run import open_run

    with pytest.raises(SettingsError) as e:
        open_run(_settings(tmp_path, {"one": {"encoder": "supervised", "checkpoint": simclr_export.name}}))
    said = str(e.value)
    assert f"rcdm.beside.one.checkpoint ({simclr_export.name}) was trained on another encoder: name 'simclr' " \
           "(this run's: 'supervised')" in said
    assert "train one on rcdm.beside.one.encoder with `scripts/train.py --encoder supervised --layer backbone`" in said
    run = open_run(_settings(tmp_path, {"one": {"encoder": "simclr", "checkpoint": None}}))
    assert "one" not in run.names and "one (rcdm.beside.<name>.checkpoint is not set)" in run.left_out_line()


def test_a_name_beside_that_the_run_already_uses_is_refused(tmp_path):
    with pytest.raises(SettingsError, match=r"rcdm\.beside\.simclr_backbone: the name of a representation of the "
                                            r"run's own"):
        _settings(tmp_path, {"simclr_backbone": {"encoder": "simclr"}})
    with pytest.raises(SettingsError, match=r"rcdm\.beside\.x\.encoder is 'dinov2'; expected one of"):
        _settings(tmp_path, {"x": {"encoder": "dinov2"}})


def test_the_models_beside_and_their_encoders_are_in_the_notebooks_cache_key(tmp_path, simclr_export):
    from rcdm_lib import pipeline

    settings = _settings(tmp_path, {"simclr_one": {"encoder": "simclr", "checkpoint": simclr_export.name}})
    files = pipeline.beside_files(settings)
    assert files == [simclr_export, ROOT / ".cache" / "smoke" / "encoders" / "simclr.safetensors"]
    assert simclr_export not in pipeline.input_files(settings)   # never trained by the pipeline
