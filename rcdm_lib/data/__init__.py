"""Data: the built-in FactorShapes dataset, out-of-distribution photos, ImageFolder for real
data, the official preprocessing pair, SSL augmentations and the feature cache."""
from rcdm_lib.data.augment import AugmentConfig, SSLAugment
from rcdm_lib.data.feature_cache import FeatureCache, dataset_features, weights_hash
from rcdm_lib.data.folder import BadImageWarning, ImageFolder, load_image
from rcdm_lib.data.shapes import FACTOR_NAMES, FACTORS, SHAPES, Factor, FactorShapes, render, sample_factors, to_float
from rcdm_lib.data.textures import ood_photos
from rcdm_lib.data.transforms import Preprocess, PreprocessPair, center_crop_arr, to_rgb

__all__ = [
    "AugmentConfig", "SSLAugment", "FeatureCache", "dataset_features", "weights_hash",
    "BadImageWarning", "ImageFolder", "load_image", "FACTOR_NAMES", "FACTORS", "SHAPES", "Factor",
    "FactorShapes", "render", "sample_factors", "to_float", "ood_photos",
    "Preprocess", "PreprocessPair", "center_crop_arr", "to_rgb",
]
