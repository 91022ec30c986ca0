"""Encoders: the published ResNet-50s read from their own file formats, tiny encoders trained
on the built-in data, the SSL losses, and a wrapper for any user encoder.

    from rcdm_lib.encoders import get_encoder
    enc = get_encoder("dino", layer="head", weights="path/to/file")   # enc.rep_dim, enc(x) -> [N, D]
"""
from rcdm_lib.encoders.registry import ENCODER_NAMES, FrozenEncoder, get_encoder, profile_weights, wrap_encoder
from rcdm_lib.encoders.tiny import TinyEncoder, TinyEncoderConfig, load_tiny_encoder, save_tiny_encoder

__all__ = [
    "ENCODER_NAMES", "FrozenEncoder", "get_encoder", "profile_weights", "wrap_encoder",
    "TinyEncoder", "TinyEncoderConfig", "load_tiny_encoder", "save_tiny_encoder",
]
