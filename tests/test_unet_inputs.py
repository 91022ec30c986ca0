"""UNet configuration, slots, bad inputs and execution modes."""
import pytest
import torch

from rcdm_lib.conditioning import SlotLayout
from rcdm_lib.unet import UNet, UNetConfig

TINY = dict(image_size=16, model_channels=32, num_res_blocks=1, channel_mult=(1, 2), attention_resolutions=(8,))


@pytest.fixture(scope="module")
def model(random_unet):
    return random_unet(rep_dim=None, image_size=16, rep_slots=(("sup", 4), ("ssl", 6)))


def test_presets_and_official_string_flags():
    cfg = UNetConfig.from_official_flags(
        {"image_size": 64, "num_channels": 32, "attention_resolutions": "16,8", "channel_mult": "", "feat_cond": True},
        ssl_dim=12,
    )
    assert cfg.channel_mult == (1, 2, 3, 4) and cfg.attention_resolutions == (16, 8) and cfg.rep_dim == 12
    assert UNetConfig(image_size=256).channel_mult == (1, 1, 2, 2, 4, 4)
    assert UNetConfig(image_size=32).channel_mult == (1, 2, 2, 2)
    assert UNetConfig(image_size=128, rep_dim=None).rep_slots == ()


def test_num_head_channels_sets_heads():
    m = UNet(UNetConfig(**{**TINY, "num_head_channels": 16}))
    assert m.middle_block[1].num_heads == 64 // 16


def test_unconditional_model_has_no_ssl_emb_and_refuses_rep():
    m = UNet(UNetConfig(**TINY))
    assert not hasattr(m, "ssl_emb")
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([0, 9])
    assert m(x, t).shape == (2, 6, 16, 16)
    with pytest.raises(ValueError, match="unconditional"):
        m(x, t, rep=torch.zeros(2, 4))


def test_slot_conditioning_changes_output_and_null_is_zeros(model):
    layout = model.config.slot_layout
    assert layout == SlotLayout((("sup", 4), ("ssl", 6))) and layout.offset("ssl") == (4, 10)
    h = torch.randn(2, 6)
    rep = layout.fill("ssl", h)
    assert torch.equal(rep[:, :4], torch.zeros(2, 4)) and torch.equal(layout.take("ssl", rep), h)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3, 700])
    with torch.no_grad():
        a = model(x, t, rep=rep)
        b = model(x, t, rep=model.null_rep(2))
    assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize(
    "x_shape,rep_shape,match",
    [
        ((2, 3, 16, 16), (2, 7), r"rep must be \[N, rep_dim\] = \[2, 10\], got \[2, 7\]"),
        ((2, 1, 16, 16), (2, 10), r"x must be \[N, 3, H, W\], got \[2, 1, 16, 16\]"),
        ((2, 3, 15, 16), (2, 10), r"not divisible by the UNet's downsampling factor 2"),
    ],
)
def test_bad_inputs_name_expected_and_given(model, x_shape, rep_shape, match):
    with pytest.raises(ValueError, match=match):
        model(torch.randn(*x_shape), torch.tensor([1, 2]), rep=torch.randn(*rep_shape))


def test_missing_rep_and_bad_image_size_config(model):
    with pytest.raises(ValueError, match="pass rep"):
        model(torch.randn(1, 3, 16, 16), torch.tensor([1]))
    with pytest.raises(ValueError, match="image_size 20 is not divisible by the downsampling factor 8"):
        UNetConfig(image_size=20, channel_mult=(1, 2, 2, 2))
    with pytest.raises(ValueError, match="rep_dim 5 disagrees"):
        UNetConfig(**TINY, rep_dim=5, rep_slots=(("a", 4),))


def test_channels_last_bf16_autocast_and_checkpointing_agree(model):
    x, t, rep = torch.randn(2, 3, 16, 16), torch.tensor([3, 700]), torch.randn(2, 10)
    with torch.no_grad():
        ref = model(x, t, rep=rep)
        cl = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last), t, rep=rep)
        model.to(memory_format=torch.contiguous_format)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf = model(x, t, rep=rep)
    assert (cl - ref).abs().max() < 1e-4
    assert bf.dtype == torch.bfloat16 and (bf.float() - ref).abs().max() < 0.1 * ref.abs().max()

    ckpt = UNet(UNetConfig(**TINY, rep_dim=10, use_checkpoint=True))
    ckpt.load_state_dict(model.state_dict())
    ckpt.train()
    model.train()
    g = []
    for m in (model, ckpt):
        m.zero_grad()
        m(x, t, rep=rep).square().mean().backward()
        g.append(m.input_blocks[0][0].weight.grad.clone())
    model.eval()
    assert torch.allclose(g[0], g[1], atol=1e-6)
