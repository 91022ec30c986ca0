"""A tiny deterministic RCDM training run, launched by the training tests (also under torchrun)."""
import argparse
import json
import sys

import torch

from rcdm_lib.conditioning import SlotLayout
from rcdm_lib.training import DiffusionConfig, SlotFeatureSource, TrainConfig, init_distributed, train_rcdm
from rcdm_lib.training.distributed import cleanup
from rcdm_lib.unet import UNetConfig

LAYOUT = SlotLayout((("a", 4), ("b", 3)))


def make_data(n=32):
    g = torch.Generator().manual_seed(123)
    imgs = (torch.rand(n, 3, 8, 8, generator=g) * 255).to(torch.uint8)
    feats = {"a": torch.randn(n, 4, generator=g).half(), "b": torch.randn(n, 3, generator=g).half()}
    return SlotFeatureSource(imgs, feats, LAYOUT, p_null=0.25)


def unet_config(**kw):
    return UNetConfig(image_size=8, model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
                      attention_resolutions=(4,), rep_slots=LAYOUT.slots, **kw)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--ckpt-every", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--dump", default=None, help="write this rank's final parameters here")
    p.add_argument("--channels", type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, ckpt_every=args.ckpt_every,
                      log_every=1, ema_rate=0.5, seed=0)
    ucfg = unet_config()
    if args.channels != 32:
        ucfg = UNetConfig(**{**ucfg.to_dict(), "model_channels": args.channels,
                             "rep_slots": tuple(map(tuple, LAYOUT.slots))})
    res = train_rcdm(ucfg, DiffusionConfig(), cfg, make_data(), args.run_dir, resume=args.resume, info=info,
                     progress=False)
    if args.dump:
        torch.save({k: v.clone() for k, v in res.model.state_dict().items()}, f"{args.dump}.rank{info.rank}")
    cleanup(info)
    json.dump({"step": res.step}, sys.stdout)


if __name__ == "__main__":
    main()
