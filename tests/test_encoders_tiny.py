"""Tiny encoders: checkpoint round trip through get_encoder, and acceptance 2 of issue 3 (a
smoke-size SSL run improves k-NN accuracy over a random encoder on the built-in data)."""
import json
import math

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


def test_ema_update_with_a_device_rate_equals_the_float_rate():
    """A CUDA graph reads DINO's per-step teacher rate from a tensor: same update as the float rate."""
    from rcdm_lib.encoders.losses import ema_update

    torch.manual_seed(0)
    cfg = TinyEncoderConfig(method="simclr", width=8, proj_hidden=16, proj_out=8)
    student, t_float, t_tensor = TinyEncoder(cfg), TinyEncoder(cfg), TinyEncoder(cfg)
    t_tensor.load_state_dict(t_float.state_dict())
    ema_update(t_float, student, 0.9)
    ema_update(t_tensor, student, torch.tensor(0.9))
    moved = False
    for (k, a), b in zip(t_float.state_dict().items(), t_tensor.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
        moved |= not torch.equal(a, student.state_dict()[k])
    assert moved  # the teachers are between their start and the student, not copies of it


def test_captured_step_refuses_inputs_of_another_shape():
    from rcdm_lib.training.graphs import CapturedStep

    calls = []
    step = CapturedStep(lambda: calls.append(step.inputs[0].sum()), zero_grad=lambda: None)
    step.step([torch.ones(4)])
    step.step([torch.full((4,), 2.0)])  # copied into the same buffer
    assert [float(c) for c in calls] == [4.0, 8.0]
    with pytest.raises(ValueError, match=r"shape \[4\], got \[5\]"):
        step.step([torch.ones(5)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["supervised", "simclr", "dino"])
def test_encoder_cuda_graph_follows_the_eager_run(method, monkeypatch):
    """On a GPU with views that draw nothing (full crop, no flip, jitter or blur): the graph run (DINO: 3
    eager steps with frozen prototypes, 3 eager warm-up steps, a capture, replays) follows the eager run to
    float accuracy; a missing or repeated step would move the update by far more than the bound."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    x, f = FactorShapes("train", size=32, length=256).all_uint8()
    still = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, gray_p=0.0, blur_p=0.0)
    cfg = EncoderTrainConfig(method=method, steps=60, batch_size=32, lr=2e-3, warmup_steps=5,
                             model=dict(width=8, stem_stride=2), augment=still)
    eager, _ = train_tiny_encoder(x, f["shape"], cfg, device="cuda", progress=False)
    graphed, hist = train_tiny_encoder(x, f["shape"], cfg, device="cuda", progress=False, cuda_graph=True)
    assert hist["cuda_graph"]
    torch.manual_seed(cfg.seed)  # the loop's initial weights
    init = TinyEncoder(TinyEncoderConfig.from_dict({**cfg.resolved().model, "image_size": 32})).state_dict()
    keys = [k for k, v in init.items() if v.is_floating_point() and not k.startswith("prototypes.")]
    d_eager = torch.cat([(eager.state_dict()[k] - init[k]).flatten() for k in keys])
    d_graph = torch.cat([(graphed.state_dict()[k] - init[k]).flatten() for k in keys])
    assert d_eager.norm() > 0 and (d_graph - d_eager).norm() <= 0.03 * d_eager.norm(), (d_graph - d_eager).norm()
    # with the method's views (drawn from the default CUDA generator under the graph): the losses of the
    # last 30 steps are those of the eager run within 20%
    cfg = EncoderTrainConfig(method=method, steps=60, batch_size=32, model=dict(width=8, stem_stride=2))
    _, h_eager = train_tiny_encoder(x, f["shape"], cfg, device="cuda", progress=False)
    _, h_graph = train_tiny_encoder(x, f["shape"], cfg, device="cuda", progress=False, cuda_graph=True)
    late = [sum(h["loss"][-3:]) / 3 for h in (h_eager, h_graph)]
    assert all(math.isfinite(v) for v in h_graph["loss"]) and abs(late[1] - late[0]) <= 0.2 * late[0], late


def test_a_tiny_vit_trains_with_dinos_loss_and_loads_as_an_encoder(tmp_path):
    """dino_vit (issue 31): DINO's recipe on a timm ViT (patch 4 at 32px, under half a million parameters in the
    backbone); saved and read back as a frozen encoder giving its class token."""
    pytest.importorskip("timm")
    from rcdm_lib.data.shapes import FactorShapes
    from rcdm_lib.encoders import get_encoder
    from rcdm_lib.encoders.tiny import save_tiny_encoder
    from rcdm_lib.encoders.training import EncoderTrainConfig, train_tiny_encoder

    images, factors = FactorShapes("train", size=32, length=64, seed=0).all_uint8()
    model, hist = train_tiny_encoder(images, factors["shape"], EncoderTrainConfig(method="dino_vit", steps=3,
                                     batch_size=16, warmup_steps=1), progress=False)
    assert model.config.arch == "vit" and 1e5 < sum(p.numel() for p in model.backbone.parameters()) < 5e5
    path = save_tiny_encoder(model, tmp_path / "dino_vit.safetensors", half=False)
    enc = get_encoder("dino_vit", layer="backbone", weights=path)
    x = images[:4].float() / 127.5 - 1
    assert enc.rep_dim == 96
    torch.testing.assert_close(enc(x), model.features(x))


@pytest.mark.parametrize("method", ["dino", "simclr"])
def test_an_encoder_run_stopped_and_continued_gives_the_weights_of_a_run_never_stopped(tmp_path, method):
    images, factors = FactorShapes("train", size=32, length=64, seed=0).all_uint8()
    cfg = EncoderTrainConfig(method=method, steps=6, batch_size=16, warmup_steps=1, model=dict(width=8))
    whole, _ = train_tiny_encoder(images, factors["shape"], cfg, progress=False)
    part, _ = train_tiny_encoder(images, factors["shape"], cfg, progress=False, run_dir=tmp_path, ckpt_every=2,
                                 stop_after=3)               # stopped after step 2; checkpoint of step 1 on disk
    cont, hist = train_tiny_encoder(images, factors["shape"], cfg, progress=False, run_dir=tmp_path, ckpt_every=2)
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(cont.state_dict()[k], v, rtol=0, atol=0, msg=k)
    with pytest.raises(ValueError, match="another config"):
        train_tiny_encoder(images, factors["shape"], EncoderTrainConfig(**{**cfg.to_dict(), "lr": 1e-3}),
                           progress=False, run_dir=tmp_path)
