"""The RCDM training loop: one loop from a 2-core laptop to many GPUs under torchrun.

AdamW, EMA, optional gradient clipping and accumulation, bf16 autocast on CUDA (fp32 on
CPU unless `cpu_bf16` asks for bf16 on a CPU with bf16 hardware), uniform timesteps, the
hybrid loss. Every example's randomness (timestep, noise, slot, null condition) is drawn
from a generator seeded by (seed, step, dataset index), and the data position follows from
the step, so a resumed run continues exactly and a distributed run equals a single-process
run on the combined batch.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DistributedSampler

from rcdm_lib.files import RunLock, atomic_write_text
from rcdm_lib.precision import use_bf16
from rcdm_lib.training.checkpoint import (config_mismatches, latest_checkpoint, load_checkpoint,
                                          load_matching_checkpoint, save_checkpoint)
from rcdm_lib.training.config import RUN_ONLY_FIELDS, DiffusionConfig, TrainConfig
from rcdm_lib.training.distributed import DistInfo, all_reduce_mean, barrier
from rcdm_lib.training.ema import EMA
from rcdm_lib.training.graphs import CapturedStep, set_lr
from rcdm_lib.training.metrics_log import MetricsLog
from rcdm_lib.unet import UNet, UNetConfig, save_unet
from rcdm_lib.user_files import require_file


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def example_seed(seed: int, step: int, index: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{step}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


@dataclass
class TrainResult:
    step: int  # seconds: training time over all resumed calls
    run_dir: Path
    model: UNet
    ema: UNet
    last_checkpoint: Path | None
    seconds: float


def _full_config(unet_cfg: UNetConfig, diff_cfg: DiffusionConfig, train_cfg: TrainConfig, data) -> dict:
    return {"unet": unet_cfg.to_dict(), "diffusion": vars(diff_cfg).copy(), "train": train_cfg.to_dict(),
            "data": data.describe()}


def _warm_start(path, unet_cfg: UNetConfig, model: UNet, ema: EMA, log: bool) -> None:
    """Load the weights and EMA of another run whose network is `unet_cfg` (a ValueError names
    the differences), keeping the conditioning statistics already set from this run's data.

    `path`: a ckpt_*.pt checkpoint of a run (weights and EMA), or an exported EMA model
    (safetensors, e.g. the shipped artifacts/tiny/rcdm/rcdm_slots.safetensors), which then
    starts both the weights and the EMA.
    """
    path = require_file(path, "--init-from", "a ckpt_*.pt checkpoint of an earlier run, or an exported "
                                             ".safetensors EMA model")
    if path.suffix == ".safetensors":
        from rcdm_lib.unet import load_unet

        # its ValueError names the file and what differs (another network, or not one of our UNet files)
        src = load_unet(path, expect_config=unet_cfg).state_dict()
        weights, ema_weights, origin = src, src, "exported EMA model"
    else:
        state = load_checkpoint(path, what="--init-from", keys=("step", "config", "model", "ema"))
        diffs = config_mismatches(state["config"]["unet"], unet_cfg.to_dict(), prefix="unet.")
        if diffs:
            raise ValueError(f"cannot start from {path}: its network differs from this run's:\n  " + "\n  ".join(diffs))
        weights, ema_weights, origin = state["model"], state["ema"], f"step {int(state['step'])} of its run"
    for net, sd in ((model, weights), (ema.model, ema_weights)):
        stats = (net.rep_mean.clone(), net.rep_std.clone()) if unet_cfg.rep_standardise else None
        net.load_state_dict(sd)
        if stats is not None:  # this data's statistics, not those the source run was trained on
            net.set_rep_statistics(*stats)
    if log:
        print(f"warm start from {path} ({origin})")


class _IndexSet(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def train_rcdm(unet_cfg: UNetConfig, diff_cfg: DiffusionConfig, train_cfg: TrainConfig, data, run_dir,
               resume: bool = False, info: DistInfo | None = None, progress: bool = True,
               stop_after: int | None = None, init_from=None) -> TrainResult:
    """Train (or resume) an RCDM in `run_dir` (see _train_rcdm), holding the folder: a second run on it stops with
    "in use by PID N" before it reads or writes anything (rcdm_lib.files.RunLock)."""
    info = info or DistInfo()
    lock = RunLock(run_dir).acquire() if info.is_main else None
    try:
        return _train_rcdm(unet_cfg, diff_cfg, train_cfg, data, run_dir, resume=resume, info=info, progress=progress,
                           stop_after=stop_after, init_from=init_from)
    finally:
        if lock is not None:
            lock.release()


def _train_rcdm(unet_cfg: UNetConfig, diff_cfg: DiffusionConfig, train_cfg: TrainConfig, data, run_dir,
                resume: bool = False, info: DistInfo | None = None, progress: bool = True,
                stop_after: int | None = None, init_from=None) -> TrainResult:
    """Train (or resume) an RCDM in `run_dir`; rank 0 writes checkpoints, metrics and grids.

    stop_after: return after this many optimizer steps of this call (for tests).
    init_from: a checkpoint of another run with the same network, or its exported EMA model
    (.safetensors): this run starts from its weights and EMA (a warm start, e.g. after one
    encoder was retrained), with a fresh optimizer, step 0 and this data's conditioning
    statistics. A resume of this run ignores it.
    """
    info = info or DistInfo()
    device = info.device
    run_dir = Path(run_dir)
    cfg = train_cfg
    if cfg.batch_size % cfg.grad_accum:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by grad_accum {cfg.grad_accum}")
    full_cfg = _full_config(unet_cfg, diff_cfg, cfg, data)
    if init_from is not None:  # part of the run's config: its resume must name the same start
        full_cfg["init_from"] = str(init_from)
    diffusion = diff_cfg.build()

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = UNet(unet_cfg).to(device)
    if unet_cfg.rep_standardise:  # statistics of the training features; restored by a resume
        if not hasattr(data, "rep_statistics"):
            raise ValueError("rep_standardise=True needs a data source with cached features (rep_statistics), "
                             f"got {type(data).__name__}")
        model.set_rep_statistics(*(s.to(device) for s in data.rep_statistics()))
    graphed = cfg.cuda_graph and not info.enabled and cfg.grad_accum == 1
    if cfg.cuda_graph and not graphed and info.is_main:
        print(f"cuda_graph applies to one process with grad_accum 1 (here {info.world_size} processes, grad_accum "
              f"{cfg.grad_accum}): the ordinary step instead")
    opt = _make_optimizer(model, cfg, device, graphed)
    opt_options = _optimizer_options(opt)
    ema = EMA(model, cfg.ema_rate)
    step, prior_seconds = 0, 0.0
    last_ckpt = latest_checkpoint(run_dir) if resume else None
    if init_from is not None and last_ckpt is None:  # a resume reads its own checkpoint instead
        _warm_start(init_from, unet_cfg, model, ema, log=info.is_main)
    if resume and last_ckpt is None and info.is_main:
        print(f"--resume: no checkpoint in {run_dir}; starting from step 0")
    if last_ckpt is not None:
        # a field added to TrainConfig after the checkpoint was written: its default, which that run trained with
        state = load_matching_checkpoint(last_ckpt, full_cfg, ignore=RUN_ONLY_FIELDS, map_location=device,
                                         defaults={"train": TrainConfig().to_dict()})
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        _restore_optimizer_options(opt, opt_options, device)  # the checkpoint may come from another mode
        torch.set_rng_state(state["rng"]["torch"].cpu())  # map_location may have moved it
        step = int(state["step"])
        prior_seconds = float(state.get("train_seconds", 0.0))
        if info.is_main:
            print(f"resumed from {last_ckpt} at step {step}")
    elif info.is_main and not resume and latest_checkpoint(run_dir) is not None:
        raise ValueError(f"{run_dir} already holds checkpoints; pass --resume to continue or choose another --out")

    ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None) if info.enabled else model
    if cfg.compile:  # the step's network only; EMA, checkpoints and previews use `model` itself
        ddp_model = torch.compile(ddp_model)
    sampler = DistributedSampler(_IndexSet(len(data)), num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=cfg.seed, drop_last=True)
    steps_per_epoch = len(sampler) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"the data has {len(data)} examples, fewer than one global batch "
                         f"({cfg.batch_size} x {info.world_size} processes)")
    autocast = use_bf16(device, cuda=cfg.bf16, cpu=cfg.cpu_bf16)
    log = MetricsLog(run_dir, enabled=info.is_main, truncate_after=step if last_ckpt is not None else 0)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(full_cfg, indent=1))

    bar = None
    if progress and info.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    epoch_cache: tuple[int, list[int]] | None = None
    bad = torch.tensor([-1.0, 0.0], device=device)  # [step, loss] of the first non-finite loss; step -1: none
    t_start, steps_this_call, window = time.time(), 0, []
    micro = cfg.batch_size // cfg.grad_accum
    T = diffusion.num_timesteps
    step_graph = _StepGraph(ddp_model, model, ema, opt, diffusion, cfg.grad_clip, autocast) if graphed else None
    try:
        while step < cfg.steps:
            if stop_after is not None and steps_this_call >= stop_after:
                break
            t0 = time.time()
            epoch, k = divmod(step, steps_per_epoch)
            if epoch_cache is None or epoch_cache[0] != epoch:
                sampler.set_epoch(epoch)
                epoch_cache = (epoch, list(sampler))
            idx = torch.tensor(epoch_cache[1][k * cfg.batch_size:(k + 1) * cfg.batch_size])
            gens = [torch.Generator().manual_seed(example_seed(cfg.seed, step, int(i))) for i in idx]
            x0, kwargs = data.batch(idx, gens)
            t = torch.stack([torch.randint(0, T, (), generator=g) for g in gens])
            noise = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in gens])
            x0, t, noise = _to_device(x0, device), _to_device(t, device), _to_device(noise, device)
            kwargs = {kk: _to_device(v, device) for kk, v in kwargs.items()}

            lr = cfg.lr_at(step)
            if step_graph is not None:
                set_lr(opt, lr)
                per_example, grad_norm = step_graph.step(x0, t, noise, kwargs)  # the optimizer and EMA steps too
                loss = per_example["loss"].mean()
            else:
                per_example = {}
                for m in range(cfg.grad_accum):
                    sl = slice(m * micro, (m + 1) * micro)
                    last_micro = m == cfg.grad_accum - 1
                    sync = ddp_model.no_sync() if (info.enabled and not last_micro) else contextlib.nullcontext()
                    with sync, torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
                        losses = diffusion.training_losses(ddp_model, x0[sl], t[sl],
                                                           model_kwargs={kk: v[sl] for kk, v in kwargs.items()},
                                                           noise=noise[sl])
                        (losses["loss"].float().mean() / cfg.grad_accum).backward()
                    for kk, v in losses.items():
                        per_example.setdefault(kk, []).append(v.detach().float())
                per_example = {kk: torch.cat(v) for kk, v in per_example.items()}
                loss = all_reduce_mean(per_example["loss"].mean(), info)
                set_lr(opt, lr)
                grad_norm = _apply_gradients(model, opt, ema, cfg.grad_clip)  # read when logged
                opt.zero_grad(set_to_none=True)
            # the first non-finite loss, recorded on the device: reading it every step would make the host
            # wait for the GPU each step; it is read before anything is logged, saved or returned (_check_finite)
            newly_bad = (bad[0] < 0) & ~torch.isfinite(loss)
            bad = torch.where(newly_bad, torch.stack([bad.new_full((), float(step)), loss.detach().float()]), bad)
            step += 1
            steps_this_call += 1
            window.append((time.time() - t0, cfg.batch_size * info.world_size))
            window = window[-20:]
            img_s = sum(n for _, n in window) / max(sum(s for s, _ in window), 1e-9)

            if (step % cfg.log_every == 0 or step % cfg.ckpt_every == 0 or step == cfg.steps
                    or (cfg.sample_every and step % cfg.sample_every == 0)):
                _check_finite(bad, run_dir)  # before any metrics, preview or checkpoint of this step
            if step % cfg.log_every == 0 or step == cfg.steps:
                rec = {"step": step, "loss": loss.item(), "lr": float(opt.param_groups[0]["lr"]), "img_per_s": img_s,
                       "epoch": epoch}
                if device.type == "cuda":
                    rec["cuda_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
                for kk in ("mse", "vb"):
                    if kk in per_example:
                        rec[kk] = all_reduce_mean(per_example[kk].mean(), info).item()
                q = (t * 4 // T).clamp(max=3)
                for qi in range(4):
                    sel = per_example["loss"][(q == qi).cpu()]
                    if len(sel):
                        rec[f"loss_q{qi}"] = sel.mean().item()
                if grad_norm is not None:
                    rec["grad_norm"] = grad_norm.item()
                log.write(rec)
            if bar is not None:
                bar.update(1)
                if step % cfg.log_every == 0:  # reading the loss waits for the device: only with the metrics
                    bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{img_s:.1f}")
            if cfg.sample_every and step % cfg.sample_every == 0 and info.is_main:
                write_preview(ema.model, diff_cfg, data, run_dir / "samples" / f"step_{step:08d}.png",
                              cfg.sample_steps, device)
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                if info.is_main:
                    last_ckpt = save_checkpoint(run_dir, step, {
                        "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                        "step": step, "rng": {"torch": torch.get_rng_state()}, "config": full_cfg,
                        "data_position": {"epoch": epoch, "batch": k + 1},
                        "train_seconds": prior_seconds + time.time() - t_start,
                    }, keep_last=cfg.keep_last)
                barrier(info)
        _check_finite(bad, run_dir)  # a run stopped between checks (stop_after) returns finite weights only
    finally:
        if bar is not None:
            bar.close()
        log.close()
    if step == cfg.steps and info.is_main:
        save_unet(run_dir / "ema.safetensors", ema.model, extra={"step": step, "train_config": full_cfg})
    return TrainResult(step=step, run_dir=run_dir, model=model, ema=ema.model, last_checkpoint=last_ckpt,
                       seconds=prior_seconds + time.time() - t_start)


def _make_optimizer(model: UNet, cfg: TrainConfig, device: torch.device, graphed: bool) -> torch.optim.AdamW:
    """AdamW without weight decay by default. On CUDA: fused (one kernel for all parameters: the tiny UNet's
    GPU step is launch-bound), or for a CUDA graph capturable with the learning rate a device tensor."""
    if graphed and device.type == "cuda":
        return torch.optim.AdamW(model.parameters(), lr=torch.tensor(cfg.lr, device=device),
                                 weight_decay=cfg.weight_decay, capturable=True, foreach=True)
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                             fused=True if device.type == "cuda" else None)


_MODE_OPTIONS = ("capturable", "foreach", "fused")


def _optimizer_options(opt: torch.optim.Optimizer) -> dict:
    """How the optimizer runs (not what it has learned): restored after loading a checkpoint of another mode."""
    group = opt.param_groups[0]
    return {"lr_tensor": torch.is_tensor(group["lr"]), **{k: group.get(k) for k in _MODE_OPTIONS}}


def _restore_optimizer_options(opt: torch.optim.Optimizer, options: dict, device: torch.device) -> None:
    """After load_state_dict: this run's mode (a checkpoint written by a fused, capturable or CPU run carries
    its own flags), the learning rate as a device tensor or a float, and AdamW's step counters where that
    mode keeps them (on the device for fused and capturable, on the CPU otherwise)."""
    on_device = bool(options["capturable"] or options["fused"])
    for group in opt.param_groups:
        for k in _MODE_OPTIONS:
            group[k] = options[k]
        lr = float(group["lr"])
        group["lr"] = torch.tensor(lr, device=device) if options["lr_tensor"] else lr
    for state in opt.state.values():
        if "step" in state:
            state["step"] = state["step"].detach().to(device if on_device else "cpu", torch.float32)


def _apply_gradients(model: UNet, opt: torch.optim.Optimizer, ema: EMA, grad_clip: float | None):
    """Clip the gradients (if grad_clip), take the optimizer step and update the EMA; the gradient norm
    before clipping (a device tensor) or None. The eager loop and the CUDA graph share it."""
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip) if grad_clip else None
    opt.step()
    ema.update(model)
    return grad_norm


class _StepGraph:
    """One RCDM training step (forward, hybrid loss, backward, clipping, AdamW, EMA) as a CapturedStep
    (rcdm_lib/training/graphs.py): captured as one CUDA graph after a few eager warm-up steps and replayed;
    on a CPU the same static-buffer step runs without a graph, which is how the tests check that it
    computes the same step as the eager loop."""

    def __init__(self, net, model: UNet, ema: EMA, opt, diffusion, grad_clip: float | None, autocast: bool):
        self.net, self.model, self.ema, self.opt, self.diffusion = net, model, ema, opt, diffusion
        self.grad_clip, self.autocast = grad_clip, autocast
        self.keys: list[str] | None = None
        self.captured = CapturedStep(self._body, lambda: opt.zero_grad(set_to_none=True))

    def _body(self):
        x0, t, noise, *reps = self.captured.inputs
        kwargs = dict(zip(self.keys, reps))
        with torch.autocast(device_type=x0.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            losses = self.diffusion.training_losses(self.net, x0, t, model_kwargs=kwargs, noise=noise)
            losses["loss"].float().mean().backward()
        grad_norm = _apply_gradients(self.model, self.opt, self.ema, self.grad_clip)
        return {k: v.detach().float() for k, v in losses.items()}, grad_norm

    def step(self, x0, t, noise, kwargs):
        """One optimizer step on this batch ([B, C, H, W], [B], [B, C, H, W], {"rep": [B, D]});
        returns (per-example losses {name: [B]}, gradient norm or None), valid until the next step."""
        if self.keys is None:
            self.keys = list(kwargs)
        elif list(kwargs) != self.keys:
            raise ValueError(f"a captured step needs the conditioning {self.keys}, got {list(kwargs)}")
        return self.captured.step([x0, t, noise, *kwargs.values()])


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host batch onto the device. On CUDA through pinned memory without blocking: a copy from pageable
    memory first waits for all queued GPU work, which would stall the host every step."""
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def _check_finite(bad: torch.Tensor, run_dir: Path) -> None:
    """Raise TrainingDiverged naming the first step whose loss was NaN or infinite, if any."""
    step, loss = bad.tolist()
    if step >= 0:
        good = latest_checkpoint(run_dir)
        raise TrainingDiverged(
            f"the loss became {loss} at step {int(step)}; stopping. The last good checkpoint is "
            f"{good if good else '(none yet)'}; lower the learning rate or enable grad_clip and --resume."
        )


@torch.no_grad()
def write_preview(model: UNet, diff_cfg: DiffusionConfig, data, path: Path, steps: int, device, n: int = 8):
    """A grid with one row per conditioning (each slot, the null condition) from a fixed noise."""
    from rcdm_lib.viz import save_image_grid

    diffusion = diff_cfg.build(timestep_respacing=f"ddim{steps}")
    rows = []
    size = model.config.image_size
    for _, kwargs in data.preview_kwargs(n):
        m = kwargs["rep"].shape[0] if "rep" in kwargs else n
        noise = torch.randn(m, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        rows.append(diffusion.ddim_sample_loop(model, noise.shape, noise=noise,
                                               model_kwargs={k: v.to(device) for k, v in kwargs.items()}))
    save_image_grid(torch.cat(rows), path, nrow=max(r.shape[0] for r in rows), scale=2)
