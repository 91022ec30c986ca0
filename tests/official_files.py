"""Files in the official formats, with random weights, for tests: the published encoders (real nesting and
key prefixes, head widths shrunk) and the RCDM release's `rcdm_ema_*.pt` (the official key layout, flags
shrunk). Nothing here downloads or copies official code; the layouts are those of rcdm_lib/encoders/formats.py
and tests/fixtures/official."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

HID, OUT = 48, 16  # head widths: layouts are real, widths shrunk so the tests stay fast


def randomise(module: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=g))
    return module.eval()


def backbone_sd(resnet):
    return {k: v.clone() for k, v in resnet.state_dict().items() if not k.startswith("fc.")}


class _VisslMLP(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.clf = nn.Sequential(*layers)

    def forward(self, x):
        return self.clf(x)


def heads(name):
    torch.manual_seed(3)
    if name == "dino":  # DINOHead(nlayers=2, use_bn=True) as in the RCDM repo: 2048-4096(BN, GELU)-256
        h = nn.Sequential(nn.Linear(2048, HID), nn.BatchNorm1d(HID), nn.GELU(), nn.Linear(HID, OUT))
        return h, {f"module.head.mlp.{k}": v for k, v in randomise(h, 4).state_dict().items()}
    if name == "simclr":  # VISSL heads [mlp 2048-2048 relu, mlp 2048-128]
        hs = nn.ModuleList([_VisslMLP(nn.Linear(2048, HID), nn.ReLU()), _VisslMLP(nn.Linear(HID, OUT))])
        return nn.Sequential(*hs), {k: v for k, v in hs.state_dict().items()}
    if name == "barlow":  # VISSL heads: Linear(no bias)-BN-ReLU x2, Linear(no bias)
        hs = nn.ModuleList([
            _VisslMLP(nn.Linear(2048, HID, bias=False), nn.BatchNorm1d(HID), nn.ReLU()),
            _VisslMLP(nn.Linear(HID, HID, bias=False), nn.BatchNorm1d(HID), nn.ReLU()),
            _VisslMLP(nn.Linear(HID, OUT, bias=False))])
        randomise(hs, 5)
        return nn.Sequential(*hs), {k: v for k, v in hs.state_dict().items()}
    if name == "vicreg":  # VICReg Projector: (Linear-BN-ReLU) x2, Linear(no bias)
        h = nn.Sequential(nn.Linear(2048, HID), nn.BatchNorm1d(HID), nn.ReLU(True), nn.Linear(HID, HID),
                          nn.BatchNorm1d(HID), nn.ReLU(True), nn.Linear(HID, OUT, bias=False))
        return h, {f"module.projector.{k}": v for k, v in randomise(h, 6).state_dict().items()}
    if name == "swav":  # projection_head: Linear-BN-ReLU-Linear
        h = nn.Sequential(nn.Linear(2048, HID), nn.BatchNorm1d(HID), nn.ReLU(True), nn.Linear(HID, OUT))
        return h, {f"module.projection_head.{k}": v for k, v in randomise(h, 7).state_dict().items()}
    raise KeyError(name)


def published_checkpoint(name, resnet):
    """(object saved the way its authors published it, head module built directly)."""
    bb = backbone_sd(resnet)
    if name == "supervised":
        return resnet.state_dict(), resnet.fc
    head, head_sd = heads(name)
    if name == "dino":
        teacher = {f"module.backbone.{k}": v for k, v in bb.items()}
        teacher.update(head_sd)
        teacher["module.head.last_layer.weight_g"] = torch.ones(100, 1)
        teacher["module.head.last_layer.weight_v"] = torch.randn(100, OUT)
        return {"teacher": teacher, "epoch": 800}, head
    if name in ("simclr", "barlow"):
        trunk = {f"_feature_blocks.{k}": v for k, v in bb.items()}
        return {"classy_state_dict": {"base_model": {"model": {"trunk": trunk, "heads": head_sd}}},
                "phase_idx": 999}, head
    if name == "vicreg":
        model = {f"module.backbone.{k}": v for k, v in bb.items()}
        model.update(head_sd)
        return {"model": model, "epoch": 1000}, head
    if name == "swav":
        sd = {f"module.{k}": v for k, v in bb.items()}
        sd.update(head_sd)
        sd["module.prototypes.weight"] = torch.randn(30, OUT)
        return sd, head




def write_encoder_file(name: str, folder: Path, seed: int = 0) -> Path:
    """A published-format file of encoder `name` (a random ResNet-50) in `folder`, named as its authors name it."""
    from torchvision.models import resnet50

    from rcdm_lib.encoders.formats import PUBLISHED

    torch.manual_seed(seed)
    obj, _ = published_checkpoint(name, randomise(resnet50(weights=None), seed + 1))
    path = Path(folder) / PUBLISHED[name].filename
    torch.save(obj, path)
    return path


def write_rcdm_file(key: str, folder: Path, unet: dict, rep_dim: int, seed: int = 0, name: str | None = None) -> Path:
    """An official-format RCDM file (a plain state dict, as `rcdm_ema_*.pt`) of a UNet with flags `unet`
    (UNetConfig names) conditioned on `rep_dim`-d representations; named as the release names it."""
    from rcdm_lib.representations import describe
    from rcdm_lib.unet import UNet, UNetConfig

    rep = describe(key)
    torch.manual_seed(seed)
    model = UNet(UNetConfig(**{**unet, "rep_dim": rep_dim}))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    part = "" if rep.method == "supervised" else ("_trunk" if rep.layer == "backbone" else "_head")
    path = Path(folder) / (name or f"rcdm_ema_{rep.method}{part}.pt")
    torch.save(model.state_dict(), path)
    return path


HUE_RGB = ((200, 30, 30), (30, 200, 30), (30, 30, 200))   # each picture is noise around one of these


def write_image_folder(root: Path, classes=("n01440764", "n01443537"), per_class: int = 3, seed: int = 0) -> Path:
    """An ImageNet-layout folder: root/train/<class>/*.JPEG and root/val/<class>/*.JPEG of random pictures of
    several sizes, among them a grayscale JPEG, a CMYK JPEG, an RGBA PNG and a palette PNG. Picture i of class c is
    noise around colour HUE_RGB[(i + c) % 3], so each class has every colour and each colour every class."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    odd = [("L", "JPEG"), ("CMYK", "JPEG"), ("RGBA", "PNG"), ("P", "PNG")]
    k = 0
    for split in ("train", "val"):
        for c in classes:
            (Path(root) / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = int(rng.integers(24, 60)), int(rng.integers(24, 60))
                base = np.array(HUE_RGB[(i + classes.index(c)) % len(HUE_RGB)], dtype=np.int16)
                pixels = (base + rng.integers(-40, 41, (h, w, 3))).clip(0, 255).astype(np.uint8)
                img = Image.fromarray(pixels, "RGB")
                mode, fmt = odd[k % len(odd)] if k < 2 * len(odd) else ("RGB", "JPEG")
                k += 1
                img = img.convert(mode) if mode != "P" else img.quantize(16)
                img.save(Path(root) / split / c / f"{c}_{i}.{'JPEG' if fmt == 'JPEG' else 'png'}", fmt)
    return Path(root)


def write_inception_file(folder: Path, seed: int = 0) -> Path:
    """torch-fidelity's inception-v3-compat weights file (a state dict of its FeatureExtractorInceptionV3) with
    random weights, named as torch-fidelity names it."""
    from unittest import mock

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from rcdm_lib.metrics.fidelity import INCEPTION_FILE

    torch.manual_seed(seed)
    # the architecture without its weights: torch-fidelity's constructor would load (or download) them
    with mock.patch("torch.load", return_value={}), mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict"):
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"], "unused.pth")
    randomise(net, seed)
    path = Path(folder) / INCEPTION_FILE
    torch.save(net.state_dict(), path)
    return path


def write_icgan_file(folder: Path, rep_dim: int = 2048, image_size: int = 16, seed: int = 0) -> Path:
    """The official IC-GAN generator format (BigGAN-PyTorch's state dict, `G_ema_best0.pth`), shrunk."""
    from rcdm_lib.icgan import Generator, ICGANConfig

    torch.manual_seed(seed)
    cfg = ICGANConfig(image_size=image_size, rep_dim=rep_dim, dim_z=12, hier=True, shared_dim_feat=16, g_ch=8,
                      g_ch_mult=(4, 2, 1), g_attention=(8,), n_classes=10, shared_dim=8)
    path = Path(folder) / "G_ema_best0.pth"
    torch.save(Generator(cfg).eval().state_dict(), path)
    return path


def write_upsampler_file(folder: Path, flags: dict, seed: int = 0) -> Path:
    """An ADM upsampler in the official key layout (class-conditional: `label_emb.weight` [classes, time_embed]) with
    the official flags `flags`, random weights."""
    from rcdm_lib.superres.model import SuperResUNet
    from rcdm_lib.superres.official import sr_config_from_official_flags

    torch.manual_seed(seed)
    sd = SuperResUNet(sr_config_from_official_flags(flags)).state_dict()
    if "ssl_emb.weight" in sd:   # ours: a Linear on one-hot classes; the release: an Embedding
        sd["label_emb.weight"] = sd.pop("ssl_emb.weight").t().contiguous()
        sd.pop("ssl_emb.bias")
    path = Path(folder) / "upsampler.pt"
    torch.save(sd, path)
    return path


# an unconditional ADM shrunk: the release's flags (256x256_diffusion_uncond.pt) with small sizes over them
SMALL_UNCONDITIONAL_FLAGS = {"image_size": 32, "num_channels": 32, "num_res_blocks": 1, "attention_resolutions": "16",
                             "channel_mult": "1,2", "num_heads": 2, "num_head_channels": -1}


def write_unconditional_file(folder: Path, flags: dict | None = None, seed: int = 0) -> Path:
    """An unconditional ADM in guided-diffusion's format (a plain state dict without ssl_emb or label_emb), named as
    the release names it, random weights; flags: official names over the release's (default: shrunk)."""
    from rcdm_lib.unconditional import unconditional_flags
    from rcdm_lib.unet import UNet, UNetConfig

    path = Path(folder) / "256x256_diffusion_uncond.pt"
    cfg = UNetConfig.from_official_flags({**unconditional_flags(path, flags or SMALL_UNCONDITIONAL_FLAGS),
                                          "feat_cond": False})
    torch.manual_seed(seed)
    model = UNet(cfg)
    with torch.no_grad():
        for q in model.parameters():
            q.normal_(0, 0.02)
    torch.save(model.state_dict(), path)
    return path
