"""The super-resolution diffusion model of chapter 13: ADM's SuperResModel on our UNet."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rcdm_lib.superres import (SuperResConfig, SuperResSource, SuperResUNet, consistency_psnr, input_retrieval,
                               load_official_upsampler, load_superres, one_hot_classes, psnr, restored_detail,
                               save_superres, shapes_pairs, shapes_superres_source, super_resolve, train_superres,
                               upsample_low_res)
from rcdm_lib.superres.official import UPSAMPLER_FLAGS, sr_config_from_official_flags
from rcdm_lib.training import DiffusionConfig, TrainConfig
from rcdm_lib.training.sources import resize_images

REPO = Path(__file__).resolve().parent.parent
SMALL = dict(image_size=16, small_size=8, model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
             attention_resolutions=(8,), num_heads=2)


def random_model(**kw) -> SuperResUNet:
    """Every weight random: a fresh UNet's zero-initialised output layer would hide the input."""
    torch.manual_seed(0)
    model = SuperResUNet(SuperResConfig(**{**SMALL, **kw})).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model


def inputs(n=2, large=16, small=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, large, large, generator=g), torch.tensor([3, 700])[:n],
            torch.rand(n, 3, small, small, generator=g) * 2 - 1)


# --------------------------------------------------------------------------- the model

def test_first_conv_sees_x_t_concatenated_with_bilinear_upsampled_low_res():
    model = random_model()
    x, t, lo = inputs()
    seen = {}
    hook = model.input_blocks[0][0].register_forward_hook(lambda m, a, out: seen.update(x=a[0].detach()))
    model(x, t, low_res=lo)
    hook.remove()
    up = F.interpolate(lo, size=(16, 16), mode="bilinear", align_corners=False)
    assert seen["x"].shape == (2, 6, 16, 16)
    torch.testing.assert_close(seen["x"][:, :3], x, rtol=0, atol=0)
    torch.testing.assert_close(seen["x"][:, 3:], up, rtol=0, atol=0)
    # bilinear with half-pixel centres (align_corners=False): an interior output pixel is
    # 3/4 of its own source pixel and 1/4 of the neighbour, in each direction
    want = 0.75 * 0.75 * lo[:, :, 2, 2] + 0.75 * 0.25 * (lo[:, :, 1, 2] + lo[:, :, 2, 1]) + 0.0625 * lo[:, :, 1, 1]
    torch.testing.assert_close(seen["x"][:, 3:, 4, 4], want)


def test_output_depends_on_low_res_and_has_image_channels():
    model = random_model()
    x, t, lo = inputs()
    out = model(x, t, low_res=lo)
    assert out.shape == (2, 6, 16, 16)   # epsilon and variance of the 3 image channels, not of the 6 inputs
    assert not torch.allclose(out, model(x, t, low_res=-lo))
    assert random_model(learn_sigma=False)(x, t, low_res=lo).shape == (2, 3, 16, 16)
    sd = model.state_dict()
    assert sd["input_blocks.0.0.weight"].shape == (32, 6, 3, 3) and sd["out.2.weight"].shape == (6, 32, 3, 3)


@pytest.mark.parametrize("low_shape,needle", [((2, 3, 7, 7), "[2, 3, 8, 8]"), ((2, 1, 8, 8), "[2, 3, 8, 8]"),
                                              ((3, 3, 8, 8), "[2, 3, 8, 8]")])
def test_low_res_of_the_wrong_shape_names_expected_and_given(low_shape, needle):
    model = random_model()
    x, t, _ = inputs()
    with pytest.raises(ValueError) as e:
        model(x, t, low_res=torch.zeros(low_shape))
    assert needle in str(e.value) and str(list(low_shape)) in str(e.value)


def test_missing_low_res_and_wrong_x_t_are_errors():
    model = random_model()
    x, t, lo = inputs()
    with pytest.raises(ValueError, match=r"needs low_res=\[2, 3, 8, 8\]"):
        model(x, t)
    with pytest.raises(ValueError, match=r"x_t must be \[N, 3, H, W\].*\[2, 6, 16, 16\]"):
        model(torch.cat([x, x], 1), t, low_res=lo)


def test_config_rejects_odd_channels_and_small_size_above_large():
    with pytest.raises(ValueError, match="must be even; got 5"):
        SuperResConfig(**{**SMALL, "in_channels": 5})
    with pytest.raises(ValueError, match="small_size must be in"):
        SuperResConfig(**{**SMALL, "small_size": 32})
    with pytest.raises(TypeError, match="SuperResConfig"):
        from rcdm_lib.unet import UNetConfig
        SuperResUNet(UNetConfig(image_size=16, channel_mult=(1, 2), model_channels=32))


def test_save_load_round_trip_and_foreign_file(tmp_path):
    model = random_model()
    path = save_superres(tmp_path / "sr.safetensors", model, extra={"step": 3})
    back = load_superres(path)
    x, t, lo = inputs()
    torch.testing.assert_close(back.eval()(x, t, low_res=lo), model(x, t, low_res=lo), rtol=0, atol=0)
    assert back.config.to_dict() == model.config.to_dict()
    from rcdm_lib.unet import UNet, UNetConfig, save_unet

    save_unet(tmp_path / "plain.safetensors", UNet(UNetConfig(image_size=16, channel_mult=(1, 2), model_channels=32)))
    with pytest.raises(ValueError, match="plain.safetensors is a safetensors file of another kind .*rcdm_lib.unet"):
        load_superres(tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="model_channels"):
        load_superres(path, expect_config=SuperResConfig(**{**SMALL, "model_channels": 64}))


# --------------------------------------------------------------------------- data

def test_source_low_res_is_the_rcdm_resize_of_the_high_res():
    high, low, factors = shapes_pairs("train", 16, 0, 16, 8, length=64, indices=range(8))
    assert high.dtype == torch.uint8 and high.shape == (8, 3, 16, 16) and low.shape == (8, 3, 8, 8)
    torch.testing.assert_close(low, resize_images(high, 8), rtol=0, atol=0)
    # resize_images shrinks by an integer factor with area averaging: an independent oracle
    area = high.float().reshape(8, 3, 8, 2, 8, 2).mean(dim=(3, 5)).round().to(torch.uint8)
    torch.testing.assert_close(low, area, rtol=0, atol=0)
    src = SuperResSource(high, 8)
    x0, kw = src.batch(torch.tensor([5, 1]))
    torch.testing.assert_close(x0, high[[5, 1]].float() / 127.5 - 1)
    torch.testing.assert_close(kw["low_res"], resize_images(high[[5, 1]], 8).float() / 127.5 - 1)
    assert set(kw) == {"low_res"} and len(factors["shape"]) == 8


def test_training_source_is_the_dataset_at_the_large_size():
    from rcdm_lib.data import FactorShapes

    src = shapes_superres_source(data_size=16, seed=0, large_size=16, small_size=8, length=32)
    native, _ = FactorShapes("train", size=16, length=32, seed=0).all_uint8()
    torch.testing.assert_close(src.high, native, rtol=0, atol=0)
    assert src.describe()["dataset"]["size"] == 16
    with pytest.raises(ValueError, match="uint8"):
        SuperResSource(native.float(), 8)


# --------------------------------------------------------------------------- training and sampling

def _train_cfg(steps, **kw):
    return TrainConfig(steps=steps, batch_size=16, lr=2e-3, ema_rate=0.9, ckpt_every=steps, log_every=1, seed=0, **kw)


def test_short_training_decreases_the_loss_on_held_out_pairs(tmp_path):
    torch.set_num_threads(1)
    cfg = SuperResConfig(**{**SMALL, "attention_resolutions": ()})
    diff_cfg = DiffusionConfig(steps=1000, noise_schedule="cosine", learn_sigma=True)
    data = shapes_superres_source(16, 0, 16, 8, length=256)
    high, low, _ = shapes_pairs("val", 16, 0, 16, 8, length=64, indices=range(32))
    x0, lo = high.float() / 127.5 - 1, low.float() / 127.5 - 1
    g = torch.Generator().manual_seed(0)
    t, noise = torch.randint(0, 1000, (32,), generator=g), torch.randn(x0.shape, generator=g)
    diffusion = diff_cfg.build()

    def held_out_mse(model):
        with torch.no_grad():
            return diffusion.training_losses(model, x0, t, {"low_res": lo}, noise)["mse"].mean().item()

    res = train_superres(cfg, diff_cfg, _train_cfg(30), data, tmp_path / "run", progress=False)
    before = held_out_mse(SuperResUNet(cfg))  # the initial weights (seeded): zero output, mse ~ 1
    after = held_out_mse(res.model.eval())
    assert res.step == 30 and (tmp_path / "run" / "ema.safetensors").is_file()
    assert after < 0.7 * before, (before, after)
    log = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 31))


def test_resume_continues_exactly(tmp_path):
    torch.set_num_threads(1)
    cfg = SuperResConfig(**{**SMALL, "attention_resolutions": ()})
    diff_cfg = DiffusionConfig(steps=1000, noise_schedule="cosine", learn_sigma=True)
    data = shapes_superres_source(16, 0, 16, 8, length=64)
    ref = train_superres(cfg, diff_cfg, _train_cfg(4), data, tmp_path / "ref", progress=False)
    half = TrainConfig(**{**_train_cfg(4).to_dict(), "ckpt_every": 2})
    part = train_superres(cfg, diff_cfg, half, data, tmp_path / "cut", progress=False, stop_after=2)
    assert part.step == 2
    done = train_superres(cfg, diff_cfg, half, data, tmp_path / "cut", resume=True, progress=False)
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, done.model.state_dict()[k]), k
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train_superres(cfg, diff_cfg, half, data, tmp_path / "cut", progress=False)
    other = SuperResConfig(**{**SMALL, "attention_resolutions": (), "model_channels": 64})
    with pytest.raises(ValueError, match="another config"):
        train_superres(other, diff_cfg, half, data, tmp_path / "cut", resume=True, progress=False)


def test_super_resolve_shapes_seed_and_errors():
    model = random_model()
    diffusion = DiffusionConfig(steps=1000, noise_schedule="cosine", learn_sigma=True).build("4")
    _, _, lo = inputs(n=2)
    a = super_resolve(model, diffusion, lo, seed=3, batch_size=1)
    assert a.shape == (2, 3, 16, 16) and torch.isfinite(a).all()
    torch.testing.assert_close(a, super_resolve(model, diffusion, lo, seed=3, batch_size=1), rtol=0, atol=0)
    assert not torch.allclose(a, super_resolve(model, diffusion, lo, seed=4, batch_size=1))
    assert super_resolve(model, diffusion, lo, seed=3, sampler="ddim").shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"low_res must be \[N, 3, 8, 8\].*\[2, 3, 16, 16\]"):
        super_resolve(model, diffusion, torch.zeros(2, 3, 16, 16))


# --------------------------------------------------------------------------- metrics

def test_psnr_consistency_detail_and_retrieval():
    a = torch.zeros(2, 3, 8, 8)
    torch.testing.assert_close(psnr(a, a + 0.2), torch.full((2,), 20.0, dtype=torch.float64))  # 10 log10(4 / 0.04)
    assert torch.isinf(psnr(a, a)).all()
    hi8, lo8, _ = shapes_pairs("test", 32, 0, 32, 16, length=64, indices=range(16))
    high, low = hi8.float() / 127.5 - 1, lo8.float() / 127.5 - 1
    assert consistency_psnr(high, low).min() > 45      # only the uint8 rounding of the resize differs
    bilinear = upsample_low_res(low, (32, 32))
    assert restored_detail(high, high, 16) == pytest.approx(1.0)
    assert restored_detail(bilinear, high, 16) < 0.3   # bilinear upsampling restores little detail
    noisy = high + 0.3 * torch.randn(high.shape, generator=torch.Generator().manual_seed(0))
    assert restored_detail(noisy, high, 16) > 2       # noise is "detail" too: the notebook scores |log|
    assert input_retrieval(high, low) == 1.0
    assert input_retrieval(high.roll(1, 0), low) < 0.5
    with pytest.raises(ValueError, match="one shape"):
        psnr(high, low)


# --------------------------------------------------------------------------- official upsamplers

def test_official_upsampler_missing_file_names_it_and_where_it_is_published(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_official_upsampler(tmp_path / "128_512_upsampler.pt")
    msg = str(e.value)
    assert "128_512_upsampler.pt" in msg and "openai/guided-diffusion" in msg
    assert "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/128_512_upsampler.pt" in msg


@pytest.mark.parametrize("name", sorted(UPSAMPLER_FLAGS))
def test_official_flags_build_the_released_architecture(name):
    flags = UPSAMPLER_FLAGS[name]
    cfg = sr_config_from_official_flags(flags)
    with torch.device("meta"):
        model = SuperResUNet(cfg)
    sd = model.state_dict()
    assert cfg.image_size == flags["large_size"] and cfg.small_size == flags["small_size"]
    assert cfg.channel_mult == (1, 1, 2, 2, 4, 4)        # sr_create_model's, for 256 and 512
    assert sd["input_blocks.0.0.weight"].shape == (192, 6, 3, 3)
    assert sd["out.2.weight"].shape == (6, 192, 3, 3)
    assert sd["ssl_emb.weight"].shape == (768, 1000)     # label_emb of 1000 ImageNet classes, transposed


def test_official_label_embedding_loads_as_ssl_emb_on_one_hot_classes(tmp_path):
    cfg = SuperResConfig(**{**SMALL, "rep_dim": 10})
    ours = random_model(rep_dim=10)
    official = {k: v for k, v in ours.state_dict().items() if not k.startswith("ssl_emb.")}
    label_emb = torch.randn(10, cfg.time_embed_dim)
    official["label_emb.weight"] = label_emb
    torch.save({f"module.{k}": v for k, v in official.items()}, tmp_path / "up.pt")
    model, diff = load_official_upsampler(tmp_path / "up.pt", config=cfg)
    y = torch.tensor([7, 2])
    torch.testing.assert_close(model.ssl_emb(one_hot_classes(y, 10)), label_emb[y])   # = nn.Embedding(y)
    assert diff.learn_sigma
    del official["out.2.bias"]
    torch.save(official, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match=r"missing keys \(1\): \['out.2.bias'\]"):
        load_official_upsampler(tmp_path / "broken.pt", config=cfg)
    with pytest.raises(ValueError, match="unknown upsampler file name"):
        load_official_upsampler(tmp_path / "broken.pt")


# --------------------------------------------------------------------------- script and pipeline

def test_train_script_exports_a_loadable_model_with_its_manifest(tmp_path):
    out, export = tmp_path / "run", tmp_path / "sr" / "superres.safetensors"
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, str(REPO / "scripts" / "train_superres.py"), "--profile", "smoke", "--steps", "3",
                    "--out", str(out), "--export", str(export), "--no-progress", "--threads", "1"],
                   check=True, capture_output=True, text=True, env=env, timeout=300)
    model = load_superres(export)
    assert model.config.small_size == 8 and model.config.image_size == 16
    manifest = json.loads((export.parent / "manifest.json").read_text())
    assert manifest["superres"]["steps"] == 3 and manifest["superres"]["file"] == "superres.safetensors"
    from rcdm_lib.artifacts import verify_manifest

    assert verify_manifest(export.parent / "manifest.json") == []


def test_ensure_superres_checks_the_manifest(tmp_path):
    from rcdm_lib import pipeline
    from rcdm_lib.artifacts import update_manifest

    export = tmp_path / "superres.safetensors"
    save_superres(export, random_model())
    profile = {"profile": "tiny", "superres": {"export": str(export)}}
    with pytest.raises(pipeline.NotebookError, match="manifest.json is missing"):
        pipeline.ensure_superres(profile)
    update_manifest(tmp_path / "manifest.json", "superres", {"file": export.name, "sha256": "0" * 64})
    with pytest.raises(pipeline.NotebookError, match="has sha256"):
        pipeline.ensure_superres(profile)
    from rcdm_lib.artifacts import file_sha256

    update_manifest(tmp_path / "manifest.json", "superres", {"file": export.name, "sha256": file_sha256(export)})
    assert pipeline.ensure_superres(profile).startswith("reused")
    assert str(export) in map(str, pipeline.input_files(profile))


def test_profile_loader_names_what_is_missing(tmp_path):
    from rcdm_lib.superres import load_profile_superres

    with pytest.raises(FileNotFoundError, match="superres.checkpoint.*openai/guided-diffusion"):
        load_profile_superres({"profile": "imagenet128", "superres": {"checkpoint": None}})
    with pytest.raises(FileNotFoundError, match="scripts/train_superres.py --profile tiny"):
        load_profile_superres({"profile": "tiny", "superres": {"export": str(tmp_path / "none.safetensors")}})
    path = save_superres(tmp_path / "sr.safetensors", random_model(),
                         extra={"diffusion": {"steps": 1000, "noise_schedule": "cosine", "learn_sigma": True}})
    sr = load_profile_superres({"profile": "tiny", "superres": {"export": str(path)}})
    assert (sr.small_size, sr.large_size, sr.official) == (8, 16, False)
    assert sr.diffusion(10).num_timesteps == 10 and sr.diffusion_config.noise_schedule == "cosine"
