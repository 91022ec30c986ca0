"""The UNet against the official implementation's fixtures (../shared/fixtures/official)."""
import json

import pytest
import torch

from rcdm_lib.unet import UNet, UNetConfig, load_official_checkpoint, load_unet, save_unet


def test_tiny_official_unet_reproduces_official_output(official_fixtures):
    d = torch.load(official_fixtures / "official_unet_tiny_a.pt", weights_only=True)
    cfg = UNetConfig.from_official_flags(d["flags"])
    model = UNet(cfg).eval()
    model.load_state_dict(d["state_dict"], strict=True)
    with torch.no_grad():
        out = model(d["x"], d["t"], rep=d["feat"])
    assert out.shape == d["out"].shape == (3, 6, 32, 32)
    assert (out - d["out"]).abs().max().item() < 1e-5


def test_official_loader_on_tiny_fixture_state_dict(official_fixtures):
    d = torch.load(official_fixtures / "official_unet_tiny_a.pt", weights_only=True)
    model = load_official_checkpoint(d["state_dict"], UNetConfig.from_official_flags(d["flags"])).eval()
    with torch.no_grad():
        assert (model(d["x"], d["t"], rep=d["feat"]) - d["out"]).abs().max().item() < 1e-5


def _official_128_config(official_fixtures):
    spec = json.loads((official_fixtures / "official_rcdm128_trunk2048_keys.json").read_text())
    return spec, UNetConfig.from_official_flags(spec["flags"], ssl_dim=spec["ssl_dim"])


def test_128px_trunk_architecture_has_official_keys_and_shapes(official_fixtures):
    spec, cfg = _official_128_config(official_fixtures)
    with torch.device("meta"):
        model = UNet(cfg)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(spec["state_dict"])  # same keys, same order
    assert ours == spec["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == spec["num_params"] == 422_603_782


def test_official_loader_names_missing_unexpected_and_misshaped_keys(official_fixtures):
    d = torch.load(official_fixtures / "official_unet_tiny_a.pt", weights_only=True)
    cfg = UNetConfig.from_official_flags(d["flags"])
    sd = dict(d["state_dict"])
    sd.pop("out.2.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["ssl_emb.weight"] = torch.zeros(128, 32)
    with pytest.raises(ValueError) as e:
        load_official_checkpoint(sd, cfg)
    msg = str(e.value)
    assert "out.2.bias" in msg and "extra.weight" in msg
    assert "ssl_emb.weight: expected shape [128, 64], checkpoint has [128, 32]" in msg


def test_official_loader_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="facebookresearch/RCDM"):
        load_official_checkpoint(tmp_path / "rcdm_ema_dino_trunk.pt")


def test_official_loader_reads_a_torch_saved_file(tmp_path):
    cfg = UNetConfig(image_size=16, model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
                     attention_resolutions=(8,), rep_dim=8)
    model = UNet(cfg)
    torch.save(model.state_dict(), tmp_path / "rcdm_ema_test.pt")
    loaded = load_official_checkpoint(tmp_path / "rcdm_ema_test.pt", cfg)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_save_load_roundtrip_keeps_config_and_weights(tmp_path):
    cfg = UNetConfig(image_size=16, model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
                     attention_resolutions=(8,), rep_slots=(("a", 4), ("b", 6)))
    model = UNet(cfg)
    torch.nn.init.normal_(model.out[2].weight)
    save_unet(tmp_path / "m.safetensors", model)
    loaded = load_unet(tmp_path / "m.safetensors", expect_config=cfg)
    assert loaded.config == cfg and loaded.config.rep_dim == 10
    x, t, rep = torch.randn(2, 3, 16, 16), torch.tensor([1, 500]), torch.randn(2, 10)
    with torch.no_grad():
        assert torch.equal(model.eval()(x, t, rep=rep), loaded.eval()(x, t, rep=rep))


def test_checkpoint_for_another_config_is_refused_with_the_fields(tmp_path):
    cfg = UNetConfig(image_size=16, model_channels=32, num_res_blocks=1, channel_mult=(1, 2), rep_dim=8)
    save_unet(tmp_path / "m.safetensors", UNet(cfg))
    other = UNetConfig(image_size=16, model_channels=64, num_res_blocks=1, channel_mult=(1, 2), rep_dim=8)
    with pytest.raises(ValueError, match=r"model_channels: expected 64, got 32"):
        load_unet(tmp_path / "m.safetensors", expect_config=other)
    with pytest.raises(ValueError, match="expected shape"):
        load_official_checkpoint(UNet(cfg).state_dict(), other)
