"""rep_standardise: each filled slot is standardised with the training statistics; empty slots stay zero."""
import pytest
import torch

from rcdm_lib.conditioning import SlotLayout
from rcdm_lib.training.data import SlotFeatureSource
from rcdm_lib.unet import UNet, UNetConfig, load_unet, save_unet

CFG = dict(image_size=8, model_channels=32, num_res_blocks=1, channel_mult=(1, 2), attention_resolutions=(4,),
           num_heads=2, rep_slots=(("a", 3), ("b", 5)))


def _pair():
    torch.manual_seed(0)
    std_model = UNet(UNetConfig(**CFG, rep_standardise=True)).eval()
    plain = UNet(UNetConfig(**CFG)).eval()
    plain.load_state_dict({k: v for k, v in std_model.state_dict().items() if not k.startswith("rep_")})
    mean, std = torch.randn(8), torch.rand(8) + 0.5
    std_model.set_rep_statistics(mean, std)
    return std_model, plain, mean, std


def test_filled_slot_is_standardised_and_empty_slots_stay_zero():
    std_model, plain, mean, std = _pair()
    layout = SlotLayout(CFG["rep_slots"])
    x, t = torch.randn(4, 3, 8, 8), torch.tensor([0, 10, 500, 999])
    h = torch.randn(4, 5) + 3.0
    by_hand = layout.fill("b", (h - mean[3:]) / std[3:])   # slot a stays exactly zero
    torch.testing.assert_close(std_model(x, t, rep=layout.fill("b", h)), plain(x, t, rep=by_hand))
    null = layout.null(4)
    torch.testing.assert_close(std_model(x, t, rep=null), plain(x, t, rep=null))


def test_statistics_travel_in_the_safetensors_file(tmp_path):
    std_model, _, mean, std = _pair()
    save_unet(tmp_path / "m.safetensors", std_model)
    back = load_unet(tmp_path / "m.safetensors")
    assert back.config.rep_standardise
    torch.testing.assert_close(back.rep_mean, mean)
    torch.testing.assert_close(back.rep_std, std)


def test_bad_statistics_and_unconditional_models_are_refused():
    std_model, plain, _, _ = _pair()
    with pytest.raises(ValueError, match=r"\[8\]"):
        std_model.set_rep_statistics(torch.zeros(7), torch.ones(7))
    with pytest.raises(ValueError, match="positive"):
        std_model.set_rep_statistics(torch.zeros(8), torch.zeros(8))
    with pytest.raises(ValueError, match="rep_standardise=False"):
        plain.set_rep_statistics(torch.zeros(8), torch.ones(8))
    with pytest.raises(ValueError, match="conditioned UNet"):
        UNet(UNetConfig(**{**CFG, "rep_slots": ()}, rep_standardise=True))


def test_source_statistics_are_per_slot_feature_moments():
    fa, fb = torch.randn(50, 3) * 2 + 1, torch.rand(50, 5)
    src = SlotFeatureSource(torch.zeros(50, 3, 8, 8, dtype=torch.uint8), {"a": fa, "b": fb},
                            SlotLayout(CFG["rep_slots"]), p_null=0.1)
    mean, std = src.rep_statistics()
    torch.testing.assert_close(mean, torch.cat([fa.mean(0), fb.mean(0)]))
    torch.testing.assert_close(std, torch.cat([fa.std(0), fb.std(0)]))
