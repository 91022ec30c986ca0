"""rcdm_lib: Representation-Conditioned Diffusion Models (Bordes, Balestriero, Vincent 2022).

Subpackages are split by concept: `diffusion` (the Gaussian process, respacing, samplers),
`unet` (the conditioned ADM UNet), `encoders`, `data`, `training`, `metrics`, `analysis`.
"""

__version__ = "0.1.0"
