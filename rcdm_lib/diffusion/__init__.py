"""The diffusion process, separate from the network (the model is always an argument)."""
from rcdm_lib.diffusion.gaussian import GaussianDiffusion, mean_flat
from rcdm_lib.diffusion.guidance import classifier_free_guidance
from rcdm_lib.diffusion.respace import respaced_betas, space_timesteps
from rcdm_lib.diffusion.schedules import get_named_beta_schedule

__all__ = [
    "GaussianDiffusion",
    "classifier_free_guidance",
    "get_named_beta_schedule",
    "mean_flat",
    "respaced_betas",
    "space_timesteps",
]
