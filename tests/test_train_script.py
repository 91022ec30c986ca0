"""scripts/train.py: options documented, profile overridden by options, clear errors."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rcdm_lib.artifacts import update_manifest, verify_manifest
from rcdm_lib.config import load_profile
from rcdm_lib.sampling import sample_from_reps
from rcdm_lib.training.sources import folder_source, resize_images, tiny_slot_names

ROOT = Path(__file__).resolve().parent.parent


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    train = _load_script("train")
    for action in train.build_parser()._actions:
        for flag in action.option_strings:
            assert flag in out
        if action.option_strings and action.dest != "help":
            assert action.help, f"{action.option_strings} has no help text"
    assert "torchrun" in out and "--rdzv_endpoint" in out


def test_options_override_the_profile():
    train = _load_script("train")
    args = train.build_parser().parse_args(["--profile", "tiny", "--steps", "7", "--lr", "3e-4", "--p-null", "0.5"])
    unet_kw, diff, cfg = train.configs_from(load_profile("tiny"), args)
    assert cfg.steps == 7 and cfg.lr == 3e-4 and cfg.p_null == 0.5
    prof = load_profile("tiny")["rcdm"]
    assert cfg.batch_size == prof["train"]["batch_size"] and cfg.ema_rate == prof["train"]["ema_rate"]
    assert diff.noise_schedule == prof["diffusion"]["noise_schedule"]
    assert unet_kw["model_channels"] == prof["unet"]["model_channels"]


def test_real_data_errors_name_what_is_missing(tmp_path, capsys):
    train = _load_script("train")
    with pytest.raises(SystemExit, match="data.root is not set"):
        train.main(["--profile", "imagenet128", "--encoder", "dino"])
    (tmp_path / "imagenet" / "train" / "a").mkdir(parents=True)   # a root without val/
    with pytest.raises(SystemExit, match=r"data.root .*imagenet has no val/"):
        train.main(["--profile", "imagenet128", "--encoder", "dino", "--data", str(tmp_path / "imagenet")])
    with pytest.raises(SystemExit, match="is not a folder"):
        train.main(["--profile", "imagenet128", "--encoder", "dino", "--data", str(tmp_path / "nope")])
    with pytest.raises(ValueError, match="set data.root"):
        folder_source({"profile": "x", "data": {}}, "dino", "backbone", "cpu")


def test_slot_names_and_resize():
    assert tiny_slot_names(["supervised", "dino"]) == ["supervised_backbone", "dino_backbone", "dino_head"]
    x = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    x[..., :2, :2] = 200  # one 2x2 block -> one pixel of the 2x2 image
    y = resize_images(x, 2)
    assert y.shape == (1, 3, 2, 2) and y[0, 0, 0, 0] == 200 and y[0, 0, 1, 1] == 0


def test_manifest_roundtrip_and_hash_check(tmp_path):
    f = tmp_path / "m.safetensors"
    f.write_bytes(b"abc")
    from rcdm_lib.artifacts import file_sha256

    update_manifest(tmp_path / "manifest.json", "m", {"file": "m.safetensors", "sha256": file_sha256(f)})
    assert verify_manifest(tmp_path / "manifest.json") == []
    f.write_bytes(b"abd")
    assert "has sha256" in verify_manifest(tmp_path / "manifest.json")[0]
    f.unlink()
    assert "is missing" in verify_manifest(tmp_path / "manifest.json")[0]



def test_record_artifact_writes_a_checkable_entry(tmp_path):
    import hashlib
    import json

    from rcdm_lib.artifacts import command_line, record_artifact

    sub = tmp_path / "enc"
    sub.mkdir()
    f = sub / "dino.safetensors"
    f.write_bytes(b"weights")
    cmd = command_line("scripts/train_encoder.py", ["--profile", "tiny", "--method", "dino x"])
    assert cmd == "python scripts/train_encoder.py --profile tiny --method 'dino x'"
    record_artifact(f, command=cmd, device="cpu", train_seconds=12.345, steps=7, final_loss=0.5)
    record_artifact(f, key="other", command=cmd, device="cuda:0", train_seconds=1, steps=1, machine={"cpu": "elsewhere"})
    m = json.loads((sub / "manifest.json").read_text())
    e = m["dino"]
    assert e["file"] == "dino.safetensors" and e["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert e["bytes"] == 7 and e["command"] == cmd and e["train_seconds"] == 12.3 and e["steps"] == 7
    assert e["final_loss"] == 0.5 and e["hardware"]["device"] == "cpu" and "torch" in e["hardware"]
    assert m["other"]["hardware"] == {"cpu": "elsewhere", "device": "cuda:0"}
    assert verify_manifest(sub / "manifest.json") == []

def test_sample_from_reps_shares_noise_and_is_reproducible(random_unet):
    from rcdm_lib.diffusion import GaussianDiffusion

    model = random_unet(rep_dim=3)
    d = GaussianDiffusion.from_official(1000, "linear", timestep_respacing="ddim5")
    rep = torch.randn(2, 3)
    a = sample_from_reps(model, d, rep, n_per=3, seed=1)
    b = sample_from_reps(model, d, rep, n_per=3, seed=1, batch_size=4)  # batching must not change results
    assert a.shape == (2, 3, 3, 8, 8) and torch.allclose(a, b, atol=1e-5)
    shared = torch.randn(3, 3, 8, 8)
    c = sample_from_reps(model, d, torch.cat([rep[:1], rep[:1]]), n_per=3, noise=shared)
    assert torch.allclose(c[0], c[1])  # same representation + same noise -> same images
    with pytest.raises(ValueError, match=r"rep must be \[N, 3\], got \[2, 4\]"):
        sample_from_reps(model, d, torch.randn(2, 4))


def test_p_null_and_slot_weights_reach_the_slot_source(monkeypatch):
    """--p-null and --slot-weight go into the TrainConfig and into the feature source the run draws from."""
    train = _load_script("train")
    args = train.build_parser().parse_args(["--profile", "tiny", "--p-null", "0.3", "--slot-weight", "dino_backbone=3",
                                            "--slot-weight", "dino_head=2.5"])
    _, _, cfg = train.configs_from(load_profile("tiny"), args)
    assert cfg.p_null == 0.3 and cfg.slot_weights == {"dino_backbone": 3.0, "dino_head": 2.5}
    seen = {}
    monkeypatch.setattr(train, "tiny_slot_source", lambda profile, device, **kw: seen.update(kw) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train.main(["--profile", "smoke", "--device", "cpu", "--p-null", "0.3", "--slot-weight", "a=2"])
    assert seen == {"p_null": 0.3, "slot_weights": {"a": 2.0}}
    with pytest.raises(SystemExit, match="SLOT=WEIGHT"):
        train.configs_from(load_profile("tiny"), train.build_parser().parse_args(["--slot-weight", "dino_backbone"]))


def test_install_rcdm_continues_the_shipped_lineage(tmp_path, random_unet, capsys):
    """A warm-started run replaces the shipped model; steps, seconds and runs add up; wrong lineages are refused."""
    import json

    from rcdm_lib.artifacts import continue_artifact, file_sha256, record_artifact
    from rcdm_lib.unet import save_unet

    ship, run = tmp_path / "art", tmp_path / "run"
    ship.mkdir(), run.mkdir()
    shipped = ship / "rcdm_slots.safetensors"
    save_unet(shipped, random_unet())
    record_artifact(shipped, command="python scripts/train.py --profile tiny", device="cpu", train_seconds=100,
                    steps=1000, runs=["python scripts/train.py --profile tiny   # 0-1000"], note="kept")
    shipped_sha = file_sha256(shipped)
    export = run / "export.safetensors"
    net = random_unet()
    with torch.no_grad():
        next(net.parameters()).add_(1.0)  # the fine-tuned weights differ from the shipped ones
    save_unet(export, net)
    cmd = f"python scripts/train.py --init-from {shipped} --export {export} --steps 500"
    record_artifact(export, command=cmd, device="cpu", train_seconds=40.04, steps=500, init_from_sha256=shipped_sha)

    # a run whose file was changed after export, a run from another start, another network: refused, by name
    other = run / "other.safetensors"
    save_unet(other, random_unet(rep_dim=7))
    record_artifact(other, command="x", device="cpu", train_seconds=1, steps=1, init_from_sha256=shipped_sha)
    recorded = other.read_bytes()
    save_unet(other, net)
    with pytest.raises(ValueError, match="other: .*other.safetensors has sha256 .*, the manifest says"):
        continue_artifact(shipped, other, why="w")
    other.write_bytes(recorded)
    with pytest.raises(ValueError, match="rep_dim: expected 5, got 7"):
        continue_artifact(shipped, other, why="w")
    record_artifact(other, command="x", device="cpu", train_seconds=1, steps=1, init_from_sha256="f" * 64)
    with pytest.raises(ValueError, match="warm-started from a file with sha256 ffffffffffff"):
        continue_artifact(shipped, other, why="w")
    with pytest.raises(KeyError, match="no entry 'missing'"):
        continue_artifact(shipped, export, why="w", export_key="missing")
    assert file_sha256(shipped) == shipped_sha  # nothing replaced by a refused install

    install = _load_script("install_rcdm")
    assert install.main([str(export), "--why", "lower lr", "--target", str(shipped)]) == 0
    assert "1500 steps, 140 s in all" in capsys.readouterr().out
    entry = json.loads((ship / "manifest.json").read_text())["rcdm_slots"]
    assert file_sha256(shipped) == file_sha256(export) == entry["sha256"] != shipped_sha
    assert entry["steps"] == 1500 and entry["train_seconds"] == 140.0 and entry["command"] == cmd
    assert entry["runs"][-1] == f"{cmd}   # 1000-1500 on cpu (40 s): lower lr" and len(entry["runs"]) == 2
    assert entry["run_seconds"] == [40.0] and entry["note"] == "kept"
    assert verify_manifest(ship / "manifest.json") == []
    # the same export again: it no longer continues the shipped file (which is now itself)
    assert install.main([str(export), "--why", "again", "--target", str(shipped)]) == 2
    assert "warm-started from a file with sha256" in capsys.readouterr().err


def test_imagenet128_trains_through_config_on_data_root_train(tmp_path):
    """The paper's setting from a user's overlay: data.root holds train/ and val/; the model trains on train/
    only (not on 'train' and 'val' as two classes), the overlay's relative paths taken from its folder."""
    import json

    import numpy as np
    import yaml
    from PIL import Image
    from torchvision.models import resnet50

    for split in ("train", "val"):
        for c in ("n01", "n02"):
            (tmp_path / "data" / split / c).mkdir(parents=True)
            for i in range(3 if split == "train" else 1):
                Image.fromarray((np.random.rand(40, 50, 3) * 255).astype("uint8")).save(
                    tmp_path / "data" / split / c / f"{i}.jpg")
    torch.save(resnet50(weights=None).state_dict(), tmp_path / "sup.pth")   # the published supervised format
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({
        "data": {"root": "data", "image_size": 16, "encoder_size": 64},
        "encoders": {"weights": {"supervised": "sup.pth"}},
        "rcdm": {"image_size": 16, "out": "run", "export": "run/export.safetensors",
                 "unet": {"model_channels": 32, "num_res_blocks": 1, "channel_mult": [1, 2],
                          "attention_resolutions": [8], "num_heads": 2},
                 "train": {"steps": 2, "batch_size": 2, "ckpt_every": 2, "log_every": 1}}}))
    train = _load_script("train")
    assert train.main(["--profile", "imagenet128", "--config", str(tmp_path / "mine.yaml"), "--encoder", "supervised",
                       "--device", "cpu", "--no-progress", "--export"]) == 0
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert data["n"] == 6 and data["dataset"]["root"] == str(tmp_path / "data" / "train") and data["rep_dim"] == 2048
    assert (tmp_path / "run" / "export.safetensors").is_file()


def test_train_encoder_keeps_checkpoints_only_while_a_run_is_unfinished(tmp_path, capsys):
    """scripts/train_encoder.py checkpoints into a run folder of its destination; a finished run empties it; one
    left by a kill is continued with --resume, cleared with --restart, and otherwise named."""
    import hashlib

    from rcdm_lib.training.checkpoint import list_checkpoints, save_checkpoint

    enc = _load_script("train_encoder")
    out = tmp_path / "enc"
    args = ["--profile", "smoke", "--method", "simclr", "--out-dir", str(out), "--ckpt-every", "5",
            "--threads", str(torch.get_num_threads())]
    assert enc.main(args) == 0 and (out / "simclr.safetensors").is_file()
    run = ROOT / "runs" / "smoke" / f"encoder_runs_{hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:8]}"
    assert list_checkpoints(run / "simclr") == []                      # finished: nothing left behind
    save_checkpoint(run / "simclr", 4, {"step": 4})                    # what a kill at step 5 leaves
    with pytest.raises(SystemExit, match="already hold checkpoints; pass --resume to continue, or delete them"):
        enc.main(args)
    assert enc.main([*args, "--restart"]) == 0 and list_checkpoints(run / "simclr") == []
    __import__("shutil").rmtree(run)
