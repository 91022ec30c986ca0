"""Every loader of a file a user names, fed every kind of bad file (issue 34, acceptance 3): each ends in one
sentence that names the file, and a pickle whose loading would run code never runs it."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from rcdm_lib.user_files import UserFileError


class _Payload:
    """Unpickling this creates a folder: the proof that a loader ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _safetensors(path: Path, meta: dict | None):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(4)}, str(path), metadata=meta)


def _bad_files(folder: Path, suffix: str, marker: Path) -> dict[str, Path]:
    """name -> a bad file with the loader's suffix."""
    folder.mkdir()
    out = {}
    p = folder / f"payload{suffix}"
    torch.save({"weight": _Payload(marker)}, p)
    out["a pickle that would run code"] = p
    whole = folder / "whole.bin"
    torch.save({"weight": torch.zeros(64, 64)}, whole)
    p = folder / f"cut{suffix}"
    p.write_bytes(whole.read_bytes()[:300])
    out["a file cut short"] = p
    p = folder / f"noise{suffix}"
    p.write_bytes(random.Random(0).randbytes(600) + random.Random(1).randbytes(600))
    out["random bytes"] = p
    p = folder / f"tensor{suffix}"
    torch.save(torch.zeros(3), p)
    out["a single tensor"] = p
    p = folder / f"other_kind{suffix}"
    _safetensors(p, {"format": "someone.else"})
    out["a safetensors file of another kind"] = p
    p = folder / f"plain{suffix}"
    _safetensors(p, None)
    out["a safetensors file without metadata"] = p
    out["a missing file"] = folder / f"missing{suffix}"
    p = folder / f"folder{suffix}"
    p.mkdir()
    out["a folder"] = p
    return out


def _loaders():
    from rcdm_lib.checkpoint_models import checkpoint_rep_dim
    from rcdm_lib.encoders.registry import get_encoder
    from rcdm_lib.encoders.tiny import load_tiny_encoder
    from rcdm_lib.icgan import load_icgan, load_official_generator
    from rcdm_lib.metrics.fidelity import checked_inception_weights
    from rcdm_lib.superres import load_official_upsampler, load_superres
    from rcdm_lib.superres.official import UPSAMPLER_FLAGS
    from rcdm_lib.training.checkpoint import load_checkpoint
    from rcdm_lib.training.ema import EMA
    from rcdm_lib.training.loop import _warm_start
    from rcdm_lib.unconditional import load_official_unconditional
    from rcdm_lib.unet import UNet, UNetConfig, load_official_checkpoint, load_unet, read_unet_config

    def warm_start(path):
        cfg = UNetConfig(image_size=16, channel_mult=(1, 2), model_channels=32, rep_dim=8)
        net = UNet(cfg)
        _warm_start(path, cfg, net, EMA(net, 0.9), log=False)

    return {  # name -> (the suffix users give such a file, the loader)
        "official RCDM": (".pt", load_official_checkpoint),
        "our UNet": (".safetensors", load_unet),
        "our UNet's config": (".safetensors", read_unet_config),
        "an RCDM file's representation size": (".pt", checkpoint_rep_dim),
        "--init-from (checkpoint)": (".pt", warm_start),
        "--init-from (export)": (".safetensors", warm_start),
        "a training checkpoint": (".pt", load_checkpoint),
        "a published encoder": (".pth", lambda p: get_encoder("dino", weights=p)),
        "a tiny encoder": (".safetensors", load_tiny_encoder),
        "our upsampler": (".safetensors", load_superres),
        "the official upsampler": (".pt", lambda p: load_official_upsampler(p, flags=UPSAMPLER_FLAGS["128_512_upsampler.pt"])),
        "our IC-GAN": (".safetensors", load_icgan),
        "the official IC-GAN": (".pth", load_official_generator),
        "the unconditional ADM": (".pt", load_official_unconditional),
        "the Inception weights": (".pth", lambda p: checked_inception_weights(p, p.parent.parent)),
    }


LOADERS = list(_loaders())


@pytest.mark.parametrize("loader", LOADERS)
def test_every_loader_names_the_file_in_one_sentence_and_runs_no_code(loader, tmp_path):
    suffix, load = _loaders()[loader]
    marker = tmp_path / "pwned"
    files = _bad_files(tmp_path / "files", suffix, marker)
    for kind, path in files.items():
        if kind.startswith("a safetensors") and suffix != ".safetensors" and loader != "a published encoder":
            continue  # a .pt loader reads these as "not a PyTorch file": covered by random bytes
        with pytest.raises(UserFileError) as e:
            load(path)
        message = str(e.value)
        assert str(path) in message, f"{loader}, {kind}: the file is not named: {message}"
        assert "\n" not in message, f"{loader}, {kind}: more than one line: {message}"
        assert "weights_only=False" not in message, f"{loader}, {kind}: advises an unsafe load: {message}"
        assert "expected" in message, f"{loader}, {kind}: does not say what was expected: {message}"
    assert not marker.exists(), f"{loader}: a file's unpickling ran code"


def test_a_pickle_of_objects_is_named_as_such_and_a_state_dict_that_does_not_fit_names_its_first_keys(tmp_path):
    from rcdm_lib.unet import UNet, UNetConfig, load_unet, save_unet
    from rcdm_lib.user_files import load_strict, read_state_dict

    marker = tmp_path / "pwned"
    bad = tmp_path / "rcdm.pt"
    torch.save({"w": _Payload(marker)}, bad)
    with pytest.raises(UserFileError, match=r"rcdm.pt holds Python objects besides tensors.*GLOBAL posix.mkdir"):
        read_state_dict(bad, "RCDM checkpoint", "rcdm_ema_*.pt")
    assert not marker.exists()

    cfg = UNetConfig(image_size=16, channel_mult=(1, 2), model_channels=32, rep_dim=8)
    sd = UNet(cfg).state_dict()
    sd["extra.weight"] = torch.zeros(1)
    sd.pop("out.2.bias")
    sd["ssl_emb.weight"] = torch.zeros(3, 3)
    with pytest.raises(UserFileError) as e:
        load_strict(UNet(cfg), sd, "f.pt", "UNet file", "ours")
    assert "1 missing keys (first 'out.2.bias')" in str(e.value)
    assert "1 unexpected keys (first 'extra.weight')" in str(e.value)
    assert "first 'ssl_emb.weight': file [3, 3], model" in str(e.value)

    # a safetensors file whose data is cut short after a whole header
    path = tmp_path / "unet.safetensors"
    save_unet(path, UNet(cfg))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserFileError, match="unet.safetensors"):
        load_unet(path)


def test_an_encoder_refuses_nan_pixels_and_a_published_file_that_does_not_fit_is_named(tmp_path):
    from rcdm_lib.encoders.registry import wrap_encoder

    enc = wrap_encoder(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 4)), image_size=8)
    x = torch.zeros(3, 3, 8, 8)
    x[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="given 1 of 3 images with NaN or infinite pixels"):
        enc(x)
    assert enc(torch.zeros(2, 3, 8, 8)).shape == (2, 4)
