"""The official IC-GAN 128px generator (facebookresearch/ic_gan, BigGAN backbone, ImageNet).

The published archive is https://dl.fbaipublicfiles.com/ic_gan/icgan_biggan_imagenet_res128.tar.gz
(linked from the README of github.com/facebookresearch/ic_gan, "Pretrained models"). It unpacks
to a folder `icgan_biggan_imagenet_res128/` whose EMA generator, the one IC-GAN samples with
(`use_ema`), is `G_ema_best0.pth` or `G_ema_best1.pth` (BigGAN-PyTorch's `save_weights`: a plain
state dict); `state_dict_best*.pth` next to it holds the training config. The generator is
conditioned on L2-normalised 2048-d SwAV ResNet-50 features (`feature_extractor: selfsupervised`).

    G = load_official_generator("/models/icgan_biggan_imagenet_res128/G_ema_best0.pth")
    x = sample_icgan(G, h_swav, n_per=4)          # h_swav [N, 2048] -> [N, 4, 3, 128, 128]

The architecture is read from the tensor shapes (width, z chunks, attention, embeddings), and
the state dict must then load strictly into rcdm_lib.icgan.Generator; any other file raises
an error that lists the differing keys.
"""
from __future__ import annotations

import re

import torch

from rcdm_lib.icgan.config import ICGANConfig
from rcdm_lib.icgan.generator import Generator

ARCHIVE_URL = "https://dl.fbaipublicfiles.com/ic_gan/icgan_biggan_imagenet_res128.tar.gz"
EXPECTED = ("the EMA generator of the official IC-GAN 128px ImageNet model, G_ema_best0.pth (or G_ema_best1.pth) "
            f"from {ARCHIVE_URL} (github.com/facebookresearch/ic_gan, README 'Pretrained models')")

# scripts/config_files/ImageNet/IC-GAN/icgan_res128.json with BigGAN-PyTorch's parser defaults
# (dim_z 120, BN_eps 1e-5, SN_eps 1e-6, n_classes 1000 with G_shared: the unused class embedding).
OFFICIAL_ICGAN_128 = ICGANConfig(image_size=128, rep_dim=2048, dim_z=120, hier=True, shared_dim_feat=512,
                                 g_ch=96, g_ch_mult=(16, 16, 8, 4, 2, 1), g_attention=(64,), d_ch=96,
                                 d_ch_mult=(1, 2, 4, 8, 16, 16), d_attention=(64,), bottom_width=4,
                                 n_classes=1000, shared_dim=128)


def config_from_state_dict(sd: dict) -> ICGANConfig:
    """Infer the generator's ICGANConfig from the shapes of a BigGAN-PyTorch IC-GAN state dict."""
    need = ["shared_feat.weight", "linear.weight", "output_layer.2.weight", "blocks.0.0.bn1.gain.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise ValueError(f"this is not an IC-GAN BigGAN generator state dict: keys {missing} are missing. "
                         f"Expected {EXPECTED}.")
    shared_dim_feat, rep_dim = sd["shared_feat.weight"].shape
    g_ch = sd["output_layer.2.weight"].shape[1]
    n_blocks = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
    mult = [sd[f"blocks.{i}.0.conv1.weight"].shape[1] // g_ch for i in range(n_blocks)]
    mult.append(sd[f"blocks.{n_blocks - 1}.0.conv2.weight"].shape[0] // g_ch)
    cond_size = sd["blocks.0.0.bn1.gain.weight"].shape[1]
    z_first = sd["linear.weight"].shape[1]
    bottom = round((sd["linear.weight"].shape[0] / (g_ch * mult[0])) ** 0.5)
    hier = cond_size > shared_dim_feat
    attention = tuple(bottom * 2 ** (i + 1) for i in range(n_blocks) if f"blocks.{i}.1.gamma" in sd)
    n_classes, shared_dim = sd["shared.weight"].shape if "shared.weight" in sd else (0, 0)
    return ICGANConfig(image_size=bottom * 2 ** n_blocks, rep_dim=rep_dim, dim_z=z_first * (n_blocks + 1) if hier
                       else z_first, hier=hier, shared_dim_feat=shared_dim_feat, g_ch=g_ch, g_ch_mult=tuple(mult),
                       g_attention=attention, bottom_width=bottom, n_classes=n_classes, shared_dim=shared_dim,
                       d_ch=OFFICIAL_ICGAN_128.d_ch, d_ch_mult=OFFICIAL_ICGAN_128.d_ch_mult[:n_blocks + 1],
                       d_attention=attention)


def load_official_generator(path, device="cpu") -> Generator:
    """Load an official IC-GAN BigGAN generator file (G_ema_best*.pth) into rcdm_lib's Generator, eval mode."""
    from rcdm_lib.user_files import read_state_dict

    expected = f"{EXPECTED}: download and unpack the archive and set icgan.weights in your --config file"
    sd = read_state_dict(path, "IC-GAN generator file", expected, wrappers=("G_ema", "state_dict"))
    config = config_from_state_dict(sd)
    with torch.device("meta"):
        probe = Generator(config).state_dict()
    problems = [f"missing {k} {list(v.shape)}" for k, v in probe.items() if k not in sd]
    problems += [f"unexpected {k} {list(v.shape)}" for k, v in sd.items() if k not in probe]
    problems += [f"{k}: file {list(sd[k].shape)}, model {list(v.shape)}" for k, v in probe.items()
                 if k in sd and sd[k].shape != v.shape]
    if problems:
        raise ValueError(f"{path} does not match the IC-GAN BigGAN generator inferred from it "
                         f"({len(problems)} differences: " + "; ".join(problems[:8])
                         + f"{' ...' if len(problems) > 8 else ''}). Expected {EXPECTED}.")
    G = Generator(config)
    G.load_state_dict(sd, strict=True)
    return G.to(device).eval()
