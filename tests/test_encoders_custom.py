"""A user's own encoder named in an overlay (issue 31): a factory module from a folder outside the repository and a
timm ViT, each checked against the module it wraps run by hand, and each bad input one sentence naming its key."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rcdm_lib.config import load_settings
from rcdm_lib.encoders.custom import UserEncoderError, load_custom_encoder
from rcdm_lib.settings import SettingsError
from rcdm_lib.user_files import UserFileError

FACTORY = '''
import torch.nn as nn


def make(width=8, flat=True):
    layers = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)]
    return nn.Sequential(*layers, nn.Flatten()) if flat else nn.Sequential(*layers)


def not_a_module():
    return "an encoder"
'''


def _overlay(folder: Path, custom: dict, checkpoints: dict | None = None) -> Path:
    import yaml

    body = {"encoders": {"custom": custom}}
    if checkpoints:
        body["rcdm"] = {"checkpoints": checkpoints}
    path = folder / "mine.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture
def user_folder(tmp_path):
    """A folder outside the repository holding the user's package and the overlay."""
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "enc.py").write_text(textwrap.dedent(FACTORY))
    yield tmp_path
    for mod in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        del sys.modules[mod]


def _encoder(overlay: Path, name: str):
    settings = load_settings("tiny", overlay)
    return load_custom_encoder(name, settings["encoders"]["custom"][name], base_dir=overlay.parent)


def test_a_factory_module_from_the_overlays_folder_with_prefixed_weights(user_folder):
    from safetensors.torch import save_file

    sys.path.insert(0, str(user_folder))
    try:
        from mypkg.enc import make
        ref = make(width=8)
    finally:
        sys.path.remove(str(user_folder))
        del sys.modules["mypkg.enc"], sys.modules["mypkg"]
    for p in ref.parameters():
        torch.nn.init.normal_(p)
    save_file({f"module.{k}": v.contiguous() for k, v in ref.state_dict().items()}, str(user_folder / "w.safetensors"))
    overlay = _overlay(user_folder, {"my_encoder": {"factory": "mypkg.enc:make", "kwargs": {"width": 8},
                                                    "weights": "w.safetensors", "prefix": "module.", "input_size": 16}},
                       checkpoints={"my_encoder": "w.safetensors"})   # a custom name is a valid checkpoint key
    enc = _encoder(overlay, "my_encoder")
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    want = ref(torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", antialias=True))
    torch.testing.assert_close(enc(x), want)     # resized to input_size; [-1, 1] passed as is (no mean/std given)
    assert enc.rep_dim == 8 and enc.spec["name"] == "my_encoder" and enc.spec["d"] == 8
    assert len(enc.spec["weights_sha256"]) == 64


def test_a_timm_vit_reads_cls_mean_or_pooled_with_its_own_normalisation(tmp_path):
    timm = pytest.importorskip("timm")
    kwargs = {"img_size": 32, "patch_size": 4, "embed_dim": 48, "depth": 2, "num_heads": 3, "num_classes": 0}
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, **kwargs).eval()
    torch.save(ref.state_dict(), tmp_path / "vit.pth")
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    normalised = ((x + 1) / 2 - 0.5) / 0.5                # the model's pretrained_cfg mean and std
    with torch.no_grad():
        tokens = ref.forward_features(normalised)
    want = {"cls": tokens[:, 0], "mean": tokens[:, 1:].mean(1), "pooled": ref.forward_head(tokens, pre_logits=True)}
    for output, expected in want.items():
        overlay = _overlay(tmp_path, {"my_vit": {"timm": "vit_tiny_patch16_224", "kwargs": kwargs,
                                                 "weights": "vit.pth", "input_size": 32, "output": output}})
        enc = _encoder(overlay, "my_vit")
        torch.testing.assert_close(enc(x), expected, msg=output)
    # `weights: none`, said explicitly: random weights, the same each time; nothing downloaded
    overlay = _overlay(tmp_path, {"my_vit": {"timm": "vit_tiny_patch16_224", "kwargs": kwargs, "weights": "none",
                                             "input_size": 32, "output": "cls"}})
    a, b = _encoder(overlay, "my_vit"), _encoder(overlay, "my_vit")
    torch.testing.assert_close(a(x), b(x))
    assert a.spec["weights_sha256"] == "none (random, seed 0)"


def test_each_bad_custom_encoder_is_one_sentence_naming_its_key(user_folder, monkeypatch):
    def fails(custom: dict, match: str, error=(UserEncoderError, UserFileError)):
        overlay = _overlay(user_folder, {"mine": custom})
        with pytest.raises(error, match=match) as e:
            _encoder(overlay, "mine")
        assert "\n" not in str(e.value), str(e.value)

    torch.save(torch.nn.Linear(3, 3).state_dict(), user_folder / "other.pt")
    fails({"factory": "nopkg.enc:make", "weights": "none"},
          r"encoders\.custom\.mine\.factory 'nopkg\.enc:make' cannot be imported \(ModuleNotFoundError")
    fails({"factory": "mypkg.enc:not_a_module", "weights": "none"},
          r"encoders\.custom\.mine\.factory 'mypkg\.enc:not_a_module' returned a str, not a torch\.nn\.Module")
    fails({"factory": "mypkg.enc:make", "weights": "other.pt"},
          r"encoders\.custom\.mine\.weights .*other\.pt does not fit its model: 2 missing keys \(first '0\.weight'\), "
          r"2 unexpected keys \(first 'weight'\)")
    fails({"factory": "mypkg.enc:make", "kwargs": {"flat": False}, "weights": "none", "input_size": 8},
          r"encoders\.custom\.mine returned \[2, 8, 1, 1\] for images \[2, 3, 8, 8\]; expected \[N, d\]")
    fails({"factory": "mypkg.enc:make"}, r"encoders\.custom\.mine\.weights is not set: give the file of its weights "
                                         r".* or `weights: none` for random weights; nothing is downloaded")
    fails({"factory": "mypkg.enc:make", "timm": "vit_tiny_patch16_224", "weights": "none"},
          r"needs exactly one of factory .* and timm .*; it has both")
    monkeypatch.setitem(sys.modules, "timm", None)   # import timm now raises ImportError
    fails({"timm": "vit_tiny_patch16_224", "weights": "none"},
          r"encoders\.custom\.mine\.timm names a timm model but timm is not installed: pip install '\.\[timm\]'")


def test_the_settings_check_a_custom_encoder_and_its_checkpoint_key(tmp_path):
    overlay = _overlay(tmp_path, {"mine": {"factory": "a.b:c", "weights": "none", "input_size": 0}})
    with pytest.raises(SettingsError, match=r"encoders\.custom\.mine\.input_size is 0; expected a number at least 1"):
        load_settings("tiny", overlay)
    overlay = _overlay(tmp_path, {"mine": {"factory": "a.b:c", "weights": "missing.pt"}})
    with pytest.raises(SettingsError, match=r"encoders\.custom\.mine\.weights names .*missing\.pt, which is not a file"):
        load_settings("tiny", overlay)
    (tmp_path / "r.pt").write_bytes(b"x")
    overlay = _overlay(tmp_path, {"mine": {"factory": "a.b:c", "weights": "none"}}, checkpoints={"mien": "r.pt"})
    with pytest.raises(SettingsError, match=r"rcdm\.checkpoints\.mien is not a setting; did you mean "
                                            r"rcdm\.checkpoints\.mine\?"):
        load_settings("tiny", overlay)
    settings = load_settings("tiny", _overlay(tmp_path, {"mine": {"factory": "a.b:c", "weights": "none"}},
                                              checkpoints={"mine": "r.pt"}))
    assert settings["encoders"]["custom"]["mine"]["weights"] == "none"          # the word, not a path
    assert settings["rcdm"]["checkpoints"]["mine"] == str(tmp_path / "r.pt")    # against the overlay's folder


def test_train_py_trains_a_single_representation_rcdm_on_a_custom_encoder_and_records_its_identity(user_folder,
                                                                                                   smoke_models):
    """scripts/train.py --config FILE --encoder NAME on the built-in data (smoke, 2 steps): the export holds the
    encoder's identity, and a bare --export without rcdm.checkpoints.<name> asks for a path."""
    import subprocess

    from rcdm_lib.artifacts import file_sha256
    from rcdm_lib.unet import read_unet_config, read_unet_extra

    torch.manual_seed(0)
    import importlib
    sys.path.insert(0, str(user_folder))
    try:
        make = importlib.import_module("mypkg.enc").make
        torch.save(make(width=6).state_dict(), user_folder / "w.pt")
    finally:
        sys.path.remove(str(user_folder))
    overlay = _overlay(user_folder, {"my_encoder": {"factory": "mypkg.enc:make", "kwargs": {"width": 6},
                                                    "weights": "w.pt", "input_size": 16}})
    root = Path(__file__).resolve().parents[1]

    def train(*extra):
        return subprocess.run([sys.executable, str(root / "scripts" / "train.py"), "--profile", "smoke", "--config",
                               str(overlay), "--encoder", "my_encoder", "--steps", "2", "--threads", "1",
                               "--no-progress", "--out", str(user_folder / "run"), *extra],
                              capture_output=True, text=True, cwd=user_folder, timeout=600)

    proc = train("--export")
    assert proc.returncode == 1 and "--export without a path writes rcdm.checkpoints.my_encoder," in proc.stderr
    export = user_folder / "my_encoder_rcdm.safetensors"
    proc = train("--export", str(export))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_unet_config(export).rep_dim == 6
    ident = read_unet_extra(export, "data")["encoder"]
    assert ident == {"name": "my_encoder", "layer": "custom", "weights_sha256": file_sha256(user_folder / "w.pt")}

    # the run shows it beside the slot model's representations; with other weights in the file, it refuses the pair
    from rcdm_lib.run import open_run

    body = {"encoders": {"custom": {"my_encoder": {"factory": "mypkg.enc:make", "kwargs": {"width": 6},
                                                   "weights": "w.pt", "input_size": 16}}},
            "rcdm": {"checkpoints": {"my_encoder": export.name}}}
    overlay.write_text(__import__("yaml").safe_dump(body))
    run = open_run(load_settings("smoke", overlay))
    assert run.names[-1] == "my_encoder" and run.representations["my_encoder"].layer == "custom"
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert run.encode("my_encoder", x).shape == (2, 6)
    assert run.sample("my_encoder", run.encode("my_encoder", x), n_per=1, steps=2).shape == (2, 1, 3, 8, 8)
    torch.save({k: v + 1 for k, v in torch.load(user_folder / "w.pt").items()}, user_folder / "w.pt")
    with pytest.raises(SettingsError) as e:
        open_run(load_settings("smoke", overlay))
    said = str(e.value)
    assert f"rcdm.checkpoints.my_encoder ({export.name}) was trained on another encoder: weights_sha256 " \
           f"{ident['weights_sha256']!r} (this run's: {file_sha256(user_folder / 'w.pt')!r})" in said


WALKTHROUGH_ENCODERS = {
    "my_encoder": {"factory": "mypkg.enc:make", "kwargs": {"width": 16}, "weights": "my_encoder.pt", "input_size": 32},
    "my_vit": {"timm": "vit_tiny_patch16_224", "weights": "my_vit.pth", "input_size": 32, "output": "cls",
               "kwargs": {"img_size": 32, "patch_size": 4, "embed_dim": 48, "depth": 2, "num_heads": 3,
                          "num_classes": 0}},
}
SMALL_CHAPTERS = {"01_conditional_samples": {"n_images": 3, "n_per": 3, "steps": 10},
                  "05_rank_mrr": {"pool_size": 64, "n_cond": 16, "n_per": 2, "steps": 10},
                  "08_backbone_projector_augmentations": {"n_images": 16, "n_per": 3, "n_aug_images": 8,
                                                          "probe_train": 512, "steps": 10}}


@pytest.mark.slow
def test_your_own_encoders_beside_the_tiny_representations_in_chapters_01_05_08(user_folder):
    """Acceptance 1 of issue 31 and the README's walk-through: a factory module in a folder outside the repository
    and a timm ViT with random weights in a local file; an RCDM trained on each for a few steps on the tiny data
    (scripts/train.py --config FILE --encoder NAME --export F); chapters 01, 05 and 08 run with both beside the
    eleven tiny representations (counts cut down in the overlay's notebooks section) and record their rows."""
    import json
    import subprocess

    import yaml

    timm = pytest.importorskip("timm")
    from rcdm_lib import pipeline

    sys.path.insert(0, str(user_folder))
    try:
        import importlib
        torch.save(importlib.import_module("mypkg.enc").make(width=16).state_dict(), user_folder / "my_encoder.pt")
    finally:
        sys.path.remove(str(user_folder))
    kwargs = WALKTHROUGH_ENCODERS["my_vit"]["kwargs"]
    torch.save(timm.create_model("vit_tiny_patch16_224", pretrained=False, **kwargs).state_dict(),
               user_folder / "my_vit.pth")
    overlay = user_folder / "mine.yaml"
    overlay.write_text(yaml.safe_dump({"encoders": {"custom": WALKTHROUGH_ENCODERS}, "notebooks": SMALL_CHAPTERS}))
    root = Path(__file__).resolve().parents[1]
    for name in WALKTHROUGH_ENCODERS:
        proc = subprocess.run([sys.executable, str(root / "scripts" / "train.py"), "--profile", "tiny", "--config",
                               str(overlay), "--encoder", name, "--steps", "20", "--no-progress",
                               "--export", str(user_folder / f"{name}_rcdm.safetensors")],
                              capture_output=True, text=True, cwd=user_folder, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-2000:]
    body = yaml.safe_load(overlay.read_text())
    body["rcdm"] = {"checkpoints": {n: f"{n}_rcdm.safetensors" for n in WALKTHROUGH_ENCODERS}}
    overlay.write_text(yaml.safe_dump(body))
    settings = load_settings("tiny", overlay)
    book = user_folder / "book"
    for chapter in SMALL_CHAPTERS:
        pipeline.run_notebooks(settings, only=chapter[:2], book_dir=book, cache_dir=user_folder / "cache",
                               log=lambda s: None)
    keys = {c: {r["key"] for r in json.loads((book / "_results" / f"{c}.json").read_text())["results"]}
            for c in SMALL_CHAPTERS}
    for name in WALKTHROUGH_ENCODERS:
        assert f"{name}/top1" in keys["01_conditional_samples"] and "dino_backbone/top1" in keys["01_conditional_samples"]
        assert f"{name}/mrr" in keys["05_rank_mrr"] and "simclr_head/mrr" in keys["05_rank_mrr"]
        page = (book / "08_backbone_projector_augmentations.ipynb").read_text()
        assert page.count(name) >= 3, f"chapter 08's tables do not show {name}"
