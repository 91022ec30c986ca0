"""Acceptance 1 and 5 of issue 3: each published encoder format, built synthetically with the
real nesting and key prefixes, loads strictly through get_encoder and gives the outputs of the
directly built module; wrong formats and missing files give actionable errors."""
import pytest
import torch
import torch.nn as nn
from torchvision.models import resnet50

from official_files import published_checkpoint as _checkpoint
from official_files import randomise as _randomise
from rcdm_lib.encoders import get_encoder, wrap_encoder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # batch-2 forward passes: extra threads only wait on a busy machine
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    m = _randomise(resnet50(weights=None), 1)
    return m


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("name", ["supervised", "dino", "simclr", "barlow", "vicreg", "swav"])
def test_published_format_loads_strictly_and_matches(name, resnet, x, tmp_path):
    obj, head = _checkpoint(name, resnet)
    path = tmp_path / f"{name}.pth"
    torch.save(obj, path)
    head = head.eval()
    fc, resnet.fc = resnet.fc, nn.Identity()
    try:
        with torch.no_grad():
            want_bb = resnet(x)
            want_head = head(want_bb)
    finally:
        resnet.fc = fc
    enc = get_encoder(name, layer="trunk", weights=path)
    assert enc.rep_dim == 2048 and not enc.training
    assert all(not p.requires_grad for p in enc.parameters())
    with torch.no_grad():
        torch.testing.assert_close(enc(x), want_bb, rtol=0, atol=1e-5)
    enc_h = get_encoder(name, layer="head", weights=path)
    with torch.no_grad():
        got = enc_h(x)
    assert enc_h.rep_dim == got.shape[1] == want_head.shape[1]
    torch.testing.assert_close(got, want_head, rtol=0, atol=1e-5)


def test_wrong_format_says_what_was_expected(resnet, tmp_path):
    obj, _ = _checkpoint("vicreg", resnet)
    path = tmp_path / "resnet50_fullckpt.pth"
    torch.save(obj, path)
    with pytest.raises(ValueError, match="VISSL checkpoint") as e:
        get_encoder("simclr", weights=path)
    assert "simclr" in str(e.value)
    with pytest.raises(ValueError, match="'teacher'"):
        get_encoder("dino", weights=path)
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pth cannot be read: it is not a PyTorch file"):
        get_encoder("swav", weights=bad)


def test_missing_file_names_file_and_page(tmp_path, monkeypatch):
    missing = tmp_path / "dino_resnet50_pretrain_full_checkpoint.pth"
    with pytest.raises(FileNotFoundError) as e:
        get_encoder("dino", weights=missing)
    assert str(missing) in str(e.value) and "https://" in str(e.value)
    # no environment variable is read (the overlay replaced them): the error names the settings key
    monkeypatch.setenv("RCDM_WEIGHTS_VICREG", str(missing))
    with pytest.raises(FileNotFoundError, match=r"encoders\.weights\.vicreg in your --config file"):
        get_encoder("vicreg")


def test_wrap_encoder_callable_and_module():
    enc = wrap_encoder(lambda x: x.mean(dim=(2, 3)), name="mean_colour", image_size=16)
    assert enc.rep_dim == 3
    conv = nn.Conv2d(3, 5, 3)
    enc = wrap_encoder(conv, rep_dim=5, image_size=16)  # feature maps are pooled
    assert enc(torch.zeros(4, 3, 16, 16)).shape == (4, 5)
    enc.train()
    assert not enc.training and not conv.training
    with pytest.raises(ValueError, match="rep_dim"):
        wrap_encoder(conv, rep_dim=7, image_size=16)
