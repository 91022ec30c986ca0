"""Tiny encoders: checkpoint round trip through get_encoder, and acceptance 2 of issue 3 (a
smoke-size SSL run improves k-NN accuracy over a random encoder on the built-in data)."""
import json

import pytest
import torch

from rcdm_lib.data import FactorShapes
from rcdm_lib.encoders import TinyEncoder, TinyEncoderConfig, get_encoder, save_tiny_encoder
from rcdm_lib.encoders.evaluation import embed, knn_accuracy
from rcdm_lib.encoders.training import EncoderTrainConfig, train_tiny_encoder


def test_tiny_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TinyEncoder(TinyEncoderConfig(method="dino", width=8, proj_hidden=16, proj_out=8, prototypes=32,
                                          proj_act="gelu", image_size=16)).eval()
    path = save_tiny_encoder(model, tmp_path / "dino.safetensors", half=False)
    x = torch.randn(3, 3, 16, 16)
    for layer, want in (("backbone", model.features(x)), ("trunk", model.features(x)), ("head", model(x))):
        enc = get_encoder("dino", layer=layer, weights=path)
        assert enc.rep_dim == want.shape[1] and not enc.training
        torch.testing.assert_close(enc(x), want.detach())
    # the release artifacts store fp16 weights: same model up to fp16 rounding
    half = get_encoder("dino", layer="head", weights=save_tiny_encoder(model, tmp_path / "half.safetensors"))
    torch.testing.assert_close(half(x), model(x).detach(), atol=2e-2, rtol=2e-2)
    assert (tmp_path / "half.safetensors").stat().st_size < 0.6 * path.stat().st_size
    assert enc.preprocess.size == 16
    with pytest.raises(ValueError, match="tiny 'dino' encoder"):
        get_encoder("simclr", weights=path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        cfg = json.loads(f.metadata()["config"])
    assert cfg["method"] == "dino" and cfg["width"] == 8


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: threads only add contention
    yield
    torch.set_num_threads(n)


def test_smoke_ssl_run_beats_random_encoder_on_knn(one_thread):
    torch.manual_seed(0)
    tr_x, tr_f = FactorShapes("train", size=16, length=1024).all_uint8()
    va_x, va_f = FactorShapes("val", size=16, length=512).all_uint8()
    model_cfg = dict(width=16, stem_stride=1, proj_hidden=64, proj_out=32)
    # measured here: shape k-NN 0.115 (random) -> 0.158 after 100 steps, 15 s on one busy core
    cfg = EncoderTrainConfig(method="simclr", steps=150, batch_size=64, lr=3e-3, warmup_steps=5, model=model_cfg)
    trained, hist = train_tiny_encoder(tr_x, None, cfg, progress=False)
    assert hist["loss"][-1] < hist["loss"][0]
    torch.manual_seed(0)
    random = TinyEncoder(TinyEncoderConfig(method="simclr", **model_cfg)).eval()
    scores = {}
    for name, m in (("random", random), ("trained", trained)):
        a, b = embed(m.features, tr_x), embed(m.features, va_x)
        scores[name] = knn_accuracy(a, tr_f["shape"], b, va_f["shape"], k=10)
    assert scores["trained"] > scores["random"] + 0.03, scores


def test_projector_without_batchnorm_round_trips(tmp_path):
    cfg = TinyEncoderConfig(method="dino", width=8, proj_hidden=16, proj_out=8, proj_layers=3, proj_act="gelu",
                            proj_bn=False, prototypes=32, image_size=16)
    model = TinyEncoder(cfg).eval()
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.head.modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in TinyEncoder(TinyEncoderConfig(width=8)).head.modules())
    path = save_tiny_encoder(model, tmp_path / "dino.safetensors", half=False)
    enc = get_encoder("dino", layer="head", weights=path)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(enc(x), model(x))


@pytest.mark.parametrize("norm_last_layer", [True, False])
def test_dino_norm_last_layer_keeps_the_prototype_gain_at_one(one_thread, norm_last_layer):
    x, _ = FactorShapes("train", size=16, length=64).all_uint8()
    cfg = EncoderTrainConfig(method="dino", steps=6, batch_size=16, lr=1e-2, warmup_steps=1,
                             model=dict(width=8, stem_stride=1, proj_hidden=16, proj_out=8, prototypes=32),
                             loss=dict(norm_last_layer=norm_last_layer, ema_start=0.5))
    teacher, _ = train_tiny_encoder(x, None, cfg, progress=False)
    g = teacher.prototypes.parametrizations.weight.original0
    assert torch.equal(g, torch.ones_like(g)) == norm_last_layer
