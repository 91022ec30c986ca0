"""IC-GAN (Casanova et al. 2021), the GAN baseline of the paper's Table 2a and Fig. 24: a BigGAN
conditioned on an instance representation h, trained on k-NN neighbourhoods.

    from rcdm_lib.icgan import ICGANConfig, ICGANTrainConfig, train_icgan, sample_icgan
    res = train_icgan(ICGANConfig(image_size=16, rep_dim=128), ICGANTrainConfig(steps=2000), images, feats)
    x = sample_icgan(res.G_ema, h, n_per=4)            # [N, 4, 3, 16, 16]

scripts/train_icgan.py trains the profile's model; rcdm_lib.icgan.load_profile_icgan loads it
(or, at imagenet128, the official 128px generator file).
"""
from rcdm_lib.icgan.config import ICGANConfig, ICGANTrainConfig
from rcdm_lib.icgan.discriminator import Discriminator
from rcdm_lib.icgan.generator import Generator, sample_icgan, standing_statistics
from rcdm_lib.icgan.kmeans import KMeansInstanceSampler, kmeans
from rcdm_lib.icgan.losses import hinge_d_loss, hinge_g_loss
from rcdm_lib.icgan.neighbours import NeighbourhoodIndex
from rcdm_lib.icgan.official import OFFICIAL_ICGAN_128, load_official_generator
from rcdm_lib.icgan.profile import ProfileICGAN, icgan_training_data, load_profile_icgan
from rcdm_lib.icgan.training import ICGANResult, load_icgan, read_icgan_metadata, save_icgan, train_icgan

__all__ = [
    "ICGANConfig", "ICGANTrainConfig", "Discriminator", "Generator", "sample_icgan", "standing_statistics",
    "KMeansInstanceSampler", "kmeans", "hinge_d_loss", "hinge_g_loss", "NeighbourhoodIndex", "OFFICIAL_ICGAN_128",
    "load_official_generator", "ProfileICGAN", "icgan_training_data", "load_profile_icgan", "ICGANResult",
    "load_icgan", "read_icgan_metadata", "save_icgan", "train_icgan",
]
