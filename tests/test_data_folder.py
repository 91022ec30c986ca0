"""Acceptance 5 of issue 3 (data side): an ImageFolder with a corrupt file, a zero-byte file
and a CMYK JPEG loads the good images and names the bad ones, never crashing."""
import numpy as np
import pytest
from PIL import Image

from rcdm_lib.data.folder import BadImageWarning, ImageFolder
from rcdm_lib.data.transforms import Preprocess, PreprocessPair


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    a, b = tmp_path / "cat", tmp_path / "dog"
    a.mkdir(), b.mkdir()
    rgb = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(a / "rgb.png")
    Image.fromarray(rgb).convert("CMYK").save(a / "cmyk.jpg")
    Image.fromarray(rgb[:, :, 0]).save(a / "gray.png")
    Image.fromarray(rgb).convert("P").save(b / "palette.png")
    rgba = np.concatenate([rgb, rng.integers(0, 255, (40, 50, 1), dtype=np.uint8)], 2)
    Image.fromarray(rgba, "RGBA").save(b / "alpha.png")
    (b / "empty.jpg").write_bytes(b"")
    good = (a / "rgb.png").read_bytes()
    (b / "corrupt.png").write_bytes(good[: len(good) // 3])  # truncated PNG
    (b / "notes.jpg").write_text("this is not an image")
    return tmp_path


def test_checked_folder_keeps_good_names_bad(folder):
    with pytest.warns(BadImageWarning) as rec:
        ds = ImageFolder(folder, check_files=True)
    assert len(ds) == 5 and ds.classes == ["cat", "dog"]
    bad = sorted(p.split("/")[-1] for p, _ in ds.bad_files)
    assert bad == ["corrupt.png", "empty.jpg", "notes.jpg"]
    messages = " ".join(str(r.message) for r in rec)
    for name in bad:
        assert name in messages
    for i in range(len(ds)):
        img, y = ds[i]
        assert img.mode == "RGB" and img.size == (50, 40)


def test_lazy_folder_skips_bad_files_while_iterating(folder):
    with pytest.warns(BadImageWarning, match="empty.jpg"):
        ds = ImageFolder(folder, transform=Preprocess(16))
    assert len(ds) == 7  # zero-byte files are dropped at scan time, the others are found on read
    with pytest.warns(BadImageWarning):
        items = [ds[i] for i in range(len(ds))]
    assert all(x.shape == (3, 16, 16) and -1 <= x.min() and x.max() <= 1 for x, _ in items)
    assert {p.split("/")[-1] for p, _ in ds.bad_files} == {"corrupt.png", "empty.jpg", "notes.jpg"}


def test_official_pair_sizes_and_range():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    x, e = PreprocessPair(128, 224)(img)
    assert x.shape == (3, 128, 128) and e.shape == (3, 224, 224)
    assert x.min() >= -1 and x.max() <= 1
    # the scale is the official x / 127.5 - 1 (a 255 pixel maps to exactly 1)
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    assert float(Preprocess(32)(white).min()) == 1.0
