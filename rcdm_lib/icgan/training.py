"""Training IC-GAN on images and their representations: hinge loss, k-NN neighbourhoods, EMA of G.

    res = train_icgan(ICGANConfig(...), ICGANTrainConfig(...), images, features, run_dir="runs/icgan")
    save_icgan("icgan.safetensors", res.G_ema, extra={...})

images: uint8 [N, 3, S, S] (or float in [-1, 1]); features: the conditioning representations
[N, D] of the same images (e.g. the cached tiny encoder features). Every random draw comes
from one torch.Generator whose state is saved in the checkpoint, so `resume=True` continues
exactly. Checkpoints are written atomically (rcdm_lib/training/checkpoint.py).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rcdm_lib.files import atomic_write_text, holding_run_dir
from rcdm_lib.icgan.config import RUN_ONLY_FIELDS, ICGANConfig, ICGANTrainConfig
from rcdm_lib.icgan.discriminator import Discriminator
from rcdm_lib.icgan.generator import Generator, standing_statistics
from rcdm_lib.icgan.losses import hinge_d_loss, hinge_g_loss
from rcdm_lib.icgan.neighbours import NeighbourhoodIndex
from rcdm_lib.training.checkpoint import latest_checkpoint, load_matching_checkpoint, save_checkpoint
from rcdm_lib.training.ema import EMA
from rcdm_lib.training.metrics_log import MetricsLog

ICGAN_FORMAT = "rcdm_lib.icgan_generator"


class ICGANDiverged(RuntimeError):
    """A loss became NaN or infinite."""


@dataclass
class ICGANResult:
    G: Generator
    G_ema: Generator
    D: Discriminator
    step: int
    seconds: float                     # training time over all resumed calls
    last_checkpoint: Path | None = None
    history: list[dict] = field(default_factory=list)


def _float_images(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x.float()


def _check_data(cfg: ICGANConfig, images: torch.Tensor, features: torch.Tensor) -> None:
    want = (3, cfg.image_size, cfg.image_size)
    if images.dim() != 4 or tuple(images.shape[1:]) != want:
        raise ValueError(f"images must be [N, {', '.join(map(str, want))}], got {list(images.shape)}")
    if features.shape != (images.shape[0], cfg.rep_dim):
        raise ValueError(f"features must be [{images.shape[0]}, {cfg.rep_dim}] (one representation per image), "
                         f"got {list(features.shape)}")


@holding_run_dir
def train_icgan(model_cfg: ICGANConfig, train_cfg: ICGANTrainConfig, images: torch.Tensor, features: torch.Tensor,
                run_dir=None, resume: bool = False, device="cpu", progress: bool = True,
                provenance: dict | None = None, stop_after: int | None = None) -> ICGANResult:
    """Train (or resume) IC-GAN. run_dir=None trains in memory (no checkpoints, no log).

    provenance (e.g. the dataset spec and the encoder's sha256) is part of the saved config, so
    a resume with other data is refused. stop_after: return after this many steps of this call.
    """
    cfg, device = train_cfg, torch.device(device)
    _check_data(model_cfg, images, features)
    full_cfg = {"model": model_cfg.to_dict(), "train": cfg.to_dict(), "data": provenance or {}}
    features = features.float()
    index = NeighbourhoodIndex(features, cfg.k_nn)
    n = images.shape[0]

    torch.manual_seed(cfg.seed)                      # initial weights
    G, D = Generator(model_cfg).to(device), Discriminator(model_cfg).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.g_lr, betas=cfg.betas, eps=cfg.adam_eps)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.d_lr, betas=cfg.betas, eps=cfg.adam_eps)
    ema = EMA(G, cfg.ema_rate)
    gen = torch.Generator().manual_seed(cfg.seed + 1)   # every draw: instances, neighbours, z
    step, prior_seconds, last_ckpt = 0, 0.0, None
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        last_ckpt = latest_checkpoint(run_dir) if resume else None
        if last_ckpt is not None:
            state = load_matching_checkpoint(last_ckpt, full_cfg, ignore=RUN_ONLY_FIELDS, map_location=device)
            G.load_state_dict(state["G"])
            D.load_state_dict(state["D"])
            ema.load_state_dict(state["G_ema"])
            opt_g.load_state_dict(state["opt_G"])
            opt_d.load_state_dict(state["opt_D"])
            gen.set_state(state["rng"])
            step, prior_seconds = int(state["step"]), float(state.get("train_seconds", 0.0))
            print(f"resumed from {last_ckpt} at step {step}")
        elif not resume and latest_checkpoint(run_dir) is not None:
            raise ValueError(f"{run_dir} already holds checkpoints; pass resume=True (--resume) or another folder")
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(full_cfg, indent=1))
    log = MetricsLog(run_dir or ".", enabled=run_dir is not None, truncate_after=step if last_ckpt else 0)

    def draw(b):
        i = torch.randint(n, (b,), generator=gen)
        return i, torch.randn(b, model_cfg.dim_z, generator=gen)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="IC-GAN", unit="step", dynamic_ncols=True)
    history, t_start, done_now, window = [], time.time(), 0, []
    B = cfg.batch_size
    G.train()
    D.train()
    try:
        while step < cfg.steps and (stop_after is None or done_now < stop_after):
            t0 = time.time()
            # D: real x_j (j a neighbour of instance i) paired with h_i; fake G(z, h_f) with h_f
            D.requires_grad_(True)
            for _ in range(cfg.num_d_steps):
                i, _ = draw(B)
                j = index.sample(i, gen)
                i_f, z = draw(B)
                with torch.no_grad():
                    fake = G(z.to(device), features[i_f].to(device))
                x = torch.cat([fake, _float_images(images[j]).to(device)])        # [2B, 3, S, S]
                h = torch.cat([features[i_f], features[i]]).to(device)
                d_fake, d_real = D(x, h).split(B)
                loss_real, loss_fake = hinge_d_loss(d_real, d_fake)
                opt_d.zero_grad(set_to_none=True)
                (loss_real + loss_fake).backward()
                opt_d.step()
            # G: fool D on G(z, h_g)
            D.requires_grad_(False)
            i_g, z = draw(B)
            loss_g = hinge_g_loss(D(G(z.to(device), features[i_g].to(device)), features[i_g].to(device)))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            step += 1
            done_now += 1
            if step <= cfg.ema_start:
                ema.model.load_state_dict(G.state_dict())
            else:
                ema.update(G)
            losses = {"d_real": loss_real.item(), "d_fake": loss_fake.item(), "g": loss_g.item()}
            if not all(math.isfinite(v) for v in losses.values()):
                raise ICGANDiverged(f"an IC-GAN loss became non-finite at step {step}: {losses}; lower the "
                                    "learning rates or resume from the last checkpoint")
            window = (window + [time.time() - t0])[-20:]
            img_s = B * (cfg.num_d_steps + 1) / max(sum(window) / len(window), 1e-9)
            if step % cfg.log_every == 0 or step == cfg.steps:
                rec = {"step": step, **losses, "img_per_s": img_s}
                history.append(rec)
                log.write(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(d=f"{losses['d_real'] + losses['d_fake']:.3f}", g=f"{losses['g']:.3f}",
                                img_s=f"{img_s:.0f}")
            if run_dir is not None and (step % cfg.ckpt_every == 0 or step == cfg.steps):
                last_ckpt = save_checkpoint(run_dir, step, {
                    "G": G.state_dict(), "D": D.state_dict(), "G_ema": ema.state_dict(),
                    "opt_G": opt_g.state_dict(), "opt_D": opt_d.state_dict(), "step": step,
                    "rng": gen.get_state(), "config": full_cfg,
                    "train_seconds": prior_seconds + time.time() - t_start}, keep_last=cfg.keep_last)
    finally:
        if bar is not None:
            bar.close()
        log.close()
    G_ema = ema.model
    if step == cfg.steps and cfg.standing_batches:
        standing_statistics(G_ema, features, cfg.standing_batches, B, seed=cfg.seed)
    G_ema.eval()
    return ICGANResult(G=G, G_ema=G_ema, D=D, step=step, seconds=prior_seconds + time.time() - t_start,
                       last_checkpoint=last_ckpt, history=history)


def save_icgan(path, G: Generator, extra: dict | None = None) -> Path:
    """The generator as safetensors; its ICGANConfig (and `extra`, e.g. the slot and the training
    config) in the metadata, so the file alone rebuilds the model. Written atomically."""
    from safetensors.torch import save_file

    meta = {"format": ICGAN_FORMAT, "icgan_config": json.dumps(G.config.to_dict())}
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in G.state_dict().items()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


ICGAN_EXPECTED = (f"an IC-GAN generator of ours (safetensors with metadata format={ICGAN_FORMAT}), written by "
                  "`python scripts/train_icgan.py --profile <profile>`; the official G_ema_best*.pth is read by "
                  "rcdm_lib.icgan.load_official_generator")


def read_icgan_metadata(path) -> dict:
    """The metadata of an IC-GAN file, JSON values decoded."""
    from rcdm_lib.user_files import safetensors_metadata

    meta = safetensors_metadata(path, "IC-GAN file", ICGAN_EXPECTED)
    out = {}
    for k, v in meta.items():
        try:
            out[k] = json.loads(v)
        except (json.JSONDecodeError, TypeError):
            out[k] = v
    return out


def load_icgan(path, device="cpu") -> Generator:
    """A generator saved by save_icgan, in eval mode (stored batch-norm statistics)."""
    from rcdm_lib.user_files import UserFileError, load_strict, read_safetensors, safetensors_metadata

    what = "IC-GAN file"
    safetensors_metadata(path, what, ICGAN_EXPECTED, fmt=ICGAN_FORMAT, require=("icgan_config",))
    meta = read_icgan_metadata(path)
    if not isinstance(meta["icgan_config"], dict):
        raise UserFileError(f"{what} {path} has an icgan_config entry that is not a JSON object; "
                            f"expected {ICGAN_EXPECTED}")
    G = Generator(ICGANConfig.from_dict(meta["icgan_config"]))
    load_strict(G, read_safetensors(path, what, ICGAN_EXPECTED), path, what, ICGAN_EXPECTED)
    return G.to(device).eval()
