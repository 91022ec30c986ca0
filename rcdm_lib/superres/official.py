"""The official ADM upsamplers (openai/guided-diffusion) in our SuperResUNet.

The paper's Fig. 14 upsamples 128px RCDM samples with ADM's public super-resolution
model. Both released upsamplers are class-conditional: the official UNet adds
`label_emb(y)` (an nn.Embedding(1000, time_embed_dim)) to the timestep embedding. That is
our `ssl_emb` (a Linear on the conditioning vector, also added to the timestep
embedding) applied to a one-hot class vector, with weight = label_emb.weight^T and zero
bias, so the released files load unchanged into SuperResUNet with rep_dim=1000:

    model, diffusion_config = load_official_upsampler("models/128_512_upsampler.pt")
    hi = super_resolve(model, diffusion_config.build("250"), lo, rep=one_hot_classes(y))
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from rcdm_lib.superres.model import SuperResConfig, SuperResUNet
from rcdm_lib.training.config import DiffusionConfig
from rcdm_lib.unet import compare_state_dict, raise_on_mismatch
from rcdm_lib.user_files import read_state_dict, require_file

NUM_CLASSES = 1000
RELEASE_URL = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/"
RELEASE_PAGE = "https://github.com/openai/guided-diffusion#download-pre-trained-models"

# MODEL_FLAGS of the guided-diffusion README, section "Upsampling".
UPSAMPLER_FLAGS: dict[str, dict[str, Any]] = {
    "64_256_upsampler.pt": dict(
        attention_resolutions="32,16,8", class_cond=True, diffusion_steps=1000, large_size=256, small_size=64,
        learn_sigma=True, noise_schedule="linear", num_channels=192, num_heads=4, num_res_blocks=2,
        resblock_updown=True, use_fp16=True, use_scale_shift_norm=True),
    "128_512_upsampler.pt": dict(
        attention_resolutions="32,16", class_cond=True, diffusion_steps=1000, large_size=512, small_size=128,
        learn_sigma=True, noise_schedule="linear", num_channels=192, num_head_channels=64, num_res_blocks=2,
        resblock_updown=True, use_fp16=True, use_scale_shift_norm=True),
}
# channel_mult of the official sr_create_model (guided-diffusion script_util.py); 512 differs
# from the base model's preset.
SR_CHANNEL_MULT = {512: (1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 64: (1, 2, 3, 4)}


def sr_config_from_official_flags(flags: Mapping[str, Any]) -> SuperResConfig:
    """SuperResConfig from the official super-resolution flag names (large_size, small_size, ...)."""
    flags = dict(flags)
    for key in ("large_size", "small_size"):
        if key not in flags:
            raise ValueError(f"official super-resolution flags need {key!r}; got {sorted(flags)}")
    large = int(flags["large_size"])
    if large not in SR_CHANNEL_MULT:
        raise ValueError(f"the official upsamplers exist for large_size {sorted(SR_CHANNEL_MULT)}, got {large}")
    return SuperResConfig(
        image_size=large, small_size=int(flags["small_size"]), in_channels=6,
        model_channels=int(flags.get("num_channels", 128)), num_res_blocks=int(flags.get("num_res_blocks", 2)),
        attention_resolutions=flags.get("attention_resolutions", "16,8"), channel_mult=SR_CHANNEL_MULT[large],
        learn_sigma=bool(flags.get("learn_sigma", False)), num_heads=int(flags.get("num_heads", 4)),
        num_head_channels=int(flags.get("num_head_channels", -1)),
        num_heads_upsample=int(flags.get("num_heads_upsample", -1)),
        use_scale_shift_norm=bool(flags.get("use_scale_shift_norm", True)),
        resblock_updown=bool(flags.get("resblock_updown", False)), dropout=float(flags.get("dropout", 0.0)),
        rep_dim=NUM_CLASSES if flags.get("class_cond", False) else None,
    )


def official_to_ours(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official upsampler state dict to SuperResUNet keys (label_emb -> ssl_emb on one-hot)."""
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if "label_emb.weight" in sd:
        w = sd.pop("label_emb.weight")                       # [num_classes, time_embed_dim]
        sd["ssl_emb.weight"] = w.t().contiguous()            # [time_embed_dim, num_classes]
        sd["ssl_emb.bias"] = torch.zeros(w.shape[1], dtype=w.dtype)
    return sd


def one_hot_classes(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """ImageNet class indices [N] -> the conditioning vectors [N, num_classes] of an official upsampler."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


def load_official_upsampler(path, flags: Mapping[str, Any] | None = None, config: SuperResConfig | None = None,
                            map_location="cpu") -> tuple[SuperResUNet, DiffusionConfig]:
    """Load a released ADM upsampler (64_256_upsampler.pt or 128_512_upsampler.pt), strictly.

    The flags are looked up by file name unless given (official names) or a config is given.
    Returns the model (eval mode) and the diffusion process it was trained for.
    """
    path = Path(path)
    known = ", ".join(UPSAMPLER_FLAGS)
    name = path.name if path.name in UPSAMPLER_FLAGS else "128_512_upsampler.pt"
    expected = (f"an official upsampler ({known}), published by openai/guided-diffusion ({RELEASE_PAGE}), e.g. "
                f"{RELEASE_URL}{name}; download one and set its path as superres.checkpoint in your --config file")
    require_file(path, "ADM upsampler checkpoint", expected)
    if config is None:
        if flags is None:
            if path.name not in UPSAMPLER_FLAGS:
                raise ValueError(f"unknown upsampler file name {path.name!r}: pass its official flags "
                                 f"(flags=...) or keep the released name ({known})")
            flags = UPSAMPLER_FLAGS[path.name]
        config = sr_config_from_official_flags(flags)
    diffusion = DiffusionConfig.from_official_flags(flags or {"learn_sigma": config.learn_sigma})
    sd = official_to_ours(read_state_dict(path, "ADM upsampler checkpoint", expected, prefix="",
                                          map_location=map_location))
    with torch.device("meta"):
        probe = SuperResUNet(config)
    raise_on_mismatch(compare_state_dict(probe, sd), f"{path} (upsampler)", what="the super-resolution config",
                      hint="Pass the flags the file was trained with (flags=...).")
    model = SuperResUNet(config)
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return model.eval(), diffusion
