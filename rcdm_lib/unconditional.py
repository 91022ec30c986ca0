"""The unconditional ADM: the paper's "unconditional" rows (chapters 04 and 09) at its own scale.

The released RCDMs have no null condition, so at imagenet128 the unconditional rows come from an
unconditional ADM checkpoint of openai/guided-diffusion in its official format (settings
`unconditional: {checkpoint: F, flags: {...}}`, flags in the release's names). The ImageNet one is
256x256_diffusion_uncond.pt; its samples are resized to the run's RCDM resolution.

    model, diffusion = load_official_unconditional("256x256_diffusion_uncond.pt")
    x = sample_unconditional(model, diffusion.for_sampling(100), n=16)     # [16, 1, 3, 256, 256]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from rcdm_lib.training.config import DiffusionConfig
from rcdm_lib.unet import UNet, UNetConfig, compare_state_dict, load_official_checkpoint
from rcdm_lib.user_files import UserFileError, read_state_dict

RELEASE_PAGE = "https://github.com/openai/guided-diffusion#download-pre-trained-models"
# MODEL_FLAGS of the guided-diffusion README for its unconditional ImageNet model
RELEASE_FLAGS: dict[str, dict[str, Any]] = {
    "256x256_diffusion_uncond.pt": dict(
        attention_resolutions="32,16,8", class_cond=False, diffusion_steps=1000, image_size=256, learn_sigma=True,
        noise_schedule="linear", num_channels=256, num_head_channels=64, num_res_blocks=2, resblock_updown=True,
        use_fp16=True, use_scale_shift_norm=True),
}
DEFAULT_FILE = "256x256_diffusion_uncond.pt"


def unconditional_flags(path, flags: Mapping[str, Any] | None = None) -> dict:
    """The flags of an unconditional ADM file: the released ones for its name (the ImageNet model's for any other
    name), with the given flags over them."""
    return {**RELEASE_FLAGS.get(Path(path).name, RELEASE_FLAGS[DEFAULT_FILE]), **dict(flags or {})}


def unconditional_problems(path, flags: Mapping[str, Any] | None = None,
                           key: str = "unconditional.checkpoint") -> list[str]:
    """Sentences naming why the file at `path` is not an unconditional ADM of `flags` (empty when it is one),
    read without building the network."""
    path = Path(path)
    try:
        sd = read_state_dict(path, key, f"an unconditional ADM such as {DEFAULT_FILE} from {RELEASE_PAGE}",
                             mmap=True)
    except UserFileError as e:  # one sentence that already names the key and the file
        return [str(e)]
    keys = set(sd)
    if "ssl_emb.weight" in keys:
        return [f"{key}: {path.name} is conditioned on a representation (an RCDM file); expected an unconditional "
                f"ADM such as {DEFAULT_FILE}"]
    if "label_emb.weight" in keys:
        return [f"{key}: {path.name} is class-conditional (it has label_emb); expected an unconditional ADM such "
                f"as {DEFAULT_FILE}"]
    try:
        flags = unconditional_flags(path, flags)
        with torch.device("meta"):
            probe = UNet(UNetConfig.from_official_flags({**flags, "feat_cond": False}))
    except (ValueError, TypeError) as e:
        return [f"unconditional.flags: {e}"]
    report = compare_state_dict(probe, sd)
    if any(report.values()):
        first = [f"{k}: the flags give {list(want)}, the file has {list(got)}" for k, want, got in report["misshaped"]]
        first += [f"{k} missing from the file" for k in report["missing"]]
        first += [f"{k} in the file but not in the flags' network" for k in report["unexpected"]]
        return [f"{key}: {path.name} does not fit unconditional.flags ({first[0]}; {len(first)} keys differ); "
                f"set the flags it was trained with (official names; default: the release's for {DEFAULT_FILE})"]
    return []


def load_official_unconditional(path, flags: Mapping[str, Any] | None = None) -> tuple[UNet, DiffusionConfig]:
    """An unconditional ADM checkpoint, loaded strictly (a key that does not fit the flags is named), and the
    diffusion process of its flags."""
    flags = unconditional_flags(path, flags)
    if flags.get("class_cond"):
        raise ValueError(f"unconditional.flags has class_cond=True; {Path(path).name} must be an unconditional ADM")
    config = UNetConfig.from_official_flags({**flags, "feat_cond": False})
    model = load_official_checkpoint(path, config=config)
    return model.eval(), DiffusionConfig.from_official_flags(flags)
