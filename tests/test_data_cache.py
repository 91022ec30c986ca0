"""Feature cache: computed once, fp16 on disk, and never reused under a stale key."""
import pytest
import torch
import torch.nn as nn

from rcdm_lib.data import FactorShapes, FeatureCache, dataset_features
from rcdm_lib.encoders import wrap_encoder


class Count(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x.mean(dim=(2, 3)))


def test_cache_hit_miss_and_stale_keys(tmp_path):
    torch.manual_seed(0)
    net = Count()
    enc = wrap_encoder(net, rep_dim=4, image_size=16)
    ds = FactorShapes("val", size=16, length=40)
    a = dataset_features(enc, ds, tmp_path, batch_size=16)
    calls = net.calls
    b = dataset_features(enc, ds, tmp_path, batch_size=16)
    assert net.calls == calls and torch.equal(a, b) and a.shape == (40, 4)  # hit: not recomputed
    files = list(tmp_path.glob("features-*.safetensors"))
    assert len(files) == 1
    with torch.no_grad():
        net.lin.weight.add_(1.0)  # new weights -> new key
    c = dataset_features(enc, ds, tmp_path, batch_size=16)
    assert net.calls > calls and not torch.allclose(a, c)
    d = dataset_features(enc, FactorShapes("val", size=16, length=40, seed=1), tmp_path)
    assert not torch.allclose(c, d)  # new dataset spec -> new key
    assert len(list(tmp_path.glob("features-*.safetensors"))) == 3


def test_tampered_entry_is_recomputed(tmp_path):
    enc = wrap_encoder(Count(), rep_dim=4, image_size=16)
    cache = FeatureCache(tmp_path)
    spec = {"dataset": "toy", "length": 2}
    x = [torch.zeros(2, 3, 16, 16)]
    first = cache.get(enc, spec, x, "pp")
    from safetensors.torch import save_file

    key_path = next(tmp_path.glob("features-*.safetensors"))
    save_file({"features": torch.ones(2, 4).half()}, str(key_path), metadata={"key": "{}"})  # wrong key inside
    again = cache.get(enc, spec, x, "pp")
    torch.testing.assert_close(again, first)


def test_a_prerendered_split_gives_the_same_features_without_rendering(tmp_path, monkeypatch):
    enc = wrap_encoder(Count(), rep_dim=4, image_size=16)
    ds = FactorShapes("val", size=16, length=40)
    images, _ = ds.all_uint8()
    rendered = dataset_features(enc, ds, tmp_path / "a", batch_size=16)
    monkeypatch.setattr(ds, "batch", lambda idx: (_ for _ in ()).throw(AssertionError("rendered again")))
    given = dataset_features(enc, ds, tmp_path / "b", batch_size=16, images=images)
    assert torch.equal(rendered, given)
    with pytest.raises(ValueError, match=r"uint8 \[40, 3, H, W\].*\[10, 3, 16, 16\]"):
        dataset_features(enc, ds, tmp_path / "c", images=images[:10])
