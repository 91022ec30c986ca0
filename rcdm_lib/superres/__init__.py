"""Super-resolution diffusion (the paper's Fig. 14): ADM's SuperResModel on our UNet, its
training pairs, a thin training loop, sampling, metrics, and the official ADM upsamplers."""
from rcdm_lib.superres.data import SuperResSource, downsample, folder_pairs, shapes_pairs, shapes_superres_source
from rcdm_lib.superres.metrics import (consistency_psnr, detail_energy, input_retrieval, psnr,
                                       restored_detail)
from rcdm_lib.superres.model import SuperResConfig, SuperResUNet, load_superres, save_superres, upsample_low_res
from rcdm_lib.superres.official import UPSAMPLER_FLAGS, load_official_upsampler, one_hot_classes
from rcdm_lib.superres.profile import ProfileSuperRes, load_profile_superres
from rcdm_lib.superres.sample import super_resolve
from rcdm_lib.superres.train import train_superres

__all__ = [
    "SuperResSource", "downsample", "folder_pairs", "shapes_pairs", "shapes_superres_source",
    "consistency_psnr", "detail_energy", "input_retrieval", "psnr", "restored_detail",
    "SuperResConfig", "SuperResUNet", "load_superres", "save_superres", "upsample_low_res",
    "UPSAMPLER_FLAGS", "load_official_upsampler", "one_hot_classes",
    "ProfileSuperRes", "load_profile_superres", "super_resolve", "train_superres",
]
