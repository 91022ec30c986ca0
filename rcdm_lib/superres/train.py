"""Training a super-resolution diffusion model: a thin single-process loop.

It differs from rcdm_lib.training.loop.train_rcdm only in the network it builds
(SuperResUNet; train_rcdm builds a plain UNet itself) and in having no distributed or
gradient-accumulation paths: the tiny upsampler trains in minutes on a CPU. Everything
else is reused: the per-example randomness (timestep and noise from a generator seeded by
(seed, step, index)), EMA, atomic checkpoints with exact resume, the metrics log.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from rcdm_lib.files import atomic_write_text, holding_run_dir
from rcdm_lib.superres.model import SuperResConfig, SuperResUNet, save_superres
from rcdm_lib.training.checkpoint import latest_checkpoint, load_matching_checkpoint, save_checkpoint
from rcdm_lib.training.config import RUN_ONLY_FIELDS, DiffusionConfig, TrainConfig
from rcdm_lib.training.ema import EMA
from rcdm_lib.training.loop import TrainingDiverged, TrainResult, example_seed
from rcdm_lib.training.metrics_log import MetricsLog


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The data order of one epoch: a permutation of range(n) fixed by (seed, epoch)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()


@holding_run_dir
def train_superres(config: SuperResConfig, diff_cfg: DiffusionConfig, train_cfg: TrainConfig, data, run_dir,
                   resume: bool = False, device="cpu", progress: bool = True,
                   stop_after: int | None = None) -> TrainResult:
    """Train (or resume) a SuperResUNet in `run_dir` on `data` (batch(indices, generators) ->
    (x0 high-res, {"low_res": ...})); writes checkpoints, metrics.jsonl and, at the end, ema.safetensors.

    stop_after: return after this many optimizer steps of this call (for tests).
    """
    device = torch.device(device)
    run_dir = Path(run_dir)
    cfg = train_cfg
    steps_per_epoch = len(data) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"the data has {len(data)} examples, fewer than one batch ({cfg.batch_size})")
    full_cfg = {"superres": config.to_dict(), "diffusion": vars(diff_cfg).copy(), "train": cfg.to_dict(),
                "data": data.describe()}
    diffusion = diff_cfg.build()
    torch.manual_seed(cfg.seed)
    model = SuperResUNet(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema_rate)
    step, prior_seconds = 0, 0.0
    last_ckpt = latest_checkpoint(run_dir) if resume else None
    if last_ckpt is not None:
        state = load_matching_checkpoint(last_ckpt, full_cfg, ignore=RUN_ONLY_FIELDS, map_location=device,
                                         defaults={"train": TrainConfig().to_dict()})  # fields added later
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step, prior_seconds = int(state["step"]), float(state.get("train_seconds", 0.0))
    elif not resume and latest_checkpoint(run_dir) is not None:
        raise ValueError(f"{run_dir} already holds checkpoints; pass --resume to continue or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", json.dumps(full_cfg, indent=1))
    log = MetricsLog(run_dir, truncate_after=step if last_ckpt is not None else 0)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train superres", unit="step", dynamic_ncols=True)
    T, order, t_start, done_now = diffusion.num_timesteps, None, time.time(), 0
    try:
        while step < cfg.steps and (stop_after is None or done_now < stop_after):
            t0 = time.time()
            epoch, k = divmod(step, steps_per_epoch)
            if order is None or order[0] != epoch:
                order = (epoch, epoch_order(len(data), cfg.seed, epoch))
            idx = torch.tensor(order[1][k * cfg.batch_size:(k + 1) * cfg.batch_size])
            gens = [torch.Generator().manual_seed(example_seed(cfg.seed, step, int(i))) for i in idx]
            x0, kwargs = data.batch(idx, gens)                                     # [B, 3, L, L], low_res
            t = torch.stack([torch.randint(0, T, (), generator=g) for g in gens])  # [B]
            noise = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in gens])
            losses = diffusion.training_losses(model, x0.to(device), t.to(device), noise=noise.to(device),
                                               model_kwargs={kk: v.to(device) for kk, v in kwargs.items()})
            loss = losses["loss"].mean()
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"the loss became {loss.item()} at step {step}; the last good checkpoint is "
                                       f"{latest_checkpoint(run_dir) or '(none yet)'}")
            loss.backward()
            lr = cfg.lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            ema.update(model)
            step += 1
            done_now += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                log.write({"step": step, "loss": loss.item(), "mse": losses["mse"].mean().item(), "lr": lr,
                           "img_per_s": cfg.batch_size / max(time.time() - t0, 1e-9), "epoch": epoch})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                last_ckpt = save_checkpoint(run_dir, step, {
                    "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                    "step": step, "config": full_cfg, "train_seconds": prior_seconds + time.time() - t_start,
                }, keep_last=cfg.keep_last)
    finally:
        if bar is not None:
            bar.close()
        log.close()
    if step == cfg.steps:
        save_superres(run_dir / "ema.safetensors", ema.model, extra={"step": step, "train_config": full_cfg})
    return TrainResult(step=step, run_dir=run_dir, model=model, ema=ema.model, last_checkpoint=last_ckpt,
                       seconds=prior_seconds + time.time() - t_start)
