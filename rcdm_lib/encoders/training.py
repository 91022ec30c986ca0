"""Training loop of the tiny encoders: supervised CE, SimCLR, Barlow Twins, VICReg, DINO, Dino+n.

One function, `train_tiny_encoder`, for every method: the method picks the loss, the head
shape and the augmentation defaults (METHOD_DEFAULTS), and any of them can be overridden by
the `encoders:` section of a profile. Data is a uint8 image tensor [N x 3 x H x W] held in
memory (the built-in split renders in seconds), views are made by the batched SSLAugment.
"""
from __future__ import annotations

import copy
import inspect
import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch

from rcdm_lib.data.augment import AugmentConfig, SSLAugment
from rcdm_lib.encoders.losses import DINOLoss, barlow_twins_loss, ema_update, nt_xent, supervised_ce, vicreg_loss
from rcdm_lib.encoders.tiny import METHODS, TinyEncoder, TinyEncoderConfig
from rcdm_lib.files import holding_run_dir
from rcdm_lib.training.checkpoint import config_mismatches, latest_checkpoint, load_checkpoint, save_checkpoint
from rcdm_lib.fields import above, at_least, between, one_of
from rcdm_lib.precision import use_bf16
from rcdm_lib.training.graphs import CapturedStep, set_lr

# SimCLR's menu, retuned for FactorShapes at 32x32 (measured: shape probe 42% -> 66% after 300
# steps): full hue rotation removes the object-colour shortcut, milder crops keep the object in
# both views, frequent blur removes the texture-pattern shortcut between views.
_SSL_AUG = dict(crop_scale=(0.5, 1.0), flip_p=0.5, jitter_p=0.8, brightness=0.4, contrast=0.4,
                saturation=0.8, hue=0.5, gray_p=0.2, blur_p=0.5, solarize_p=0.0)

# Per-method defaults: model (TinyEncoderConfig fields), augment (AugmentConfig), loss kwargs.
METHOD_DEFAULTS = {
    "supervised": dict(model=dict(), augment=dict(crop_scale=(0.5, 1.0), jitter_p=0.0, gray_p=0.0), loss=dict()),
    "simclr": dict(model=dict(proj_hidden=256, proj_out=64), augment=_SSL_AUG, loss=dict(temperature=0.2)),
    "barlow": dict(model=dict(proj_hidden=512, proj_out=512, proj_layers=3), augment=_SSL_AUG, loss=dict(lambd=5e-3)),
    "vicreg": dict(model=dict(proj_hidden=512, proj_out=512, proj_layers=3), augment=_SSL_AUG, loss=dict()),
    # DINO: 2 global views. Multi-crop (local_crops > 0: extra half-resolution local crops for
    # the student) is supported but measured worse here (shape probe 32% vs 47% at 600-700 steps).
    "dino": dict(model=dict(proj_hidden=256, proj_out=64, proj_act="gelu", prototypes=512), augment=_SSL_AUG,
                 loss=dict(teacher_temp=0.04, student_temp=0.1, center_momentum=0.9, ema_start=0.99,
                           local_crops=0, local_scale=(0.15, 0.45), local_size=16, norm_last_layer=False)),
    # the ViT beside the ResNet (issue 31): DINO's recipe on a timm ViT, patch 4 at 32px, 0.46M parameters
    "dino_vit": dict(model=dict(arch="vit", width=96, depth=4, heads=3, patch_size=4, proj_hidden=256, proj_out=64,
                                proj_act="gelu", prototypes=512), augment=_SSL_AUG,
                     loss=dict(teacher_temp=0.04, student_temp=0.1, center_momentum=0.9, ema_start=0.99,
                               local_crops=0, local_scale=(0.15, 0.45), local_size=16, norm_last_layer=False)),
    "dino_noise": dict(model=dict(proj_hidden=256, proj_out=64, proj_act="gelu", prototypes=512),
                       augment=dict(_SSL_AUG, noise_std=0.2, noise_p=0.5),
                       loss=dict(teacher_temp=0.04, student_temp=0.1, center_momentum=0.9, ema_start=0.99,
                                 local_crops=0, local_scale=(0.15, 0.45), local_size=16, norm_last_layer=False)),
}


@dataclass
class EncoderSchedule:
    """How long and how fast an encoder trains: the `encoders.train` keys (and `per_method.<m>.train`)."""

    steps: int = at_least(1, 1000)
    batch_size: int = at_least(2, 256)   # the contrastive losses need two examples
    lr: float = above(0.0, 2e-3)
    weight_decay: float = at_least(0.0, 1e-5)
    warmup_steps: int = at_least(0, 50)
    seed: int = at_least(0, 0)
    cpu_bf16: bool = False  # bf16 autocast of the networks on a CPU with AMX/AVX512-BF16 (2x here); losses in fp32


@dataclass
class EncoderLoss:
    """Every method's loss options (`per_method.<m>.loss`); a method reads its own, and
    EncoderTrainConfig.resolved names an option the method does not read."""

    temperature: float | None = above(0.0, None)        # SimCLR
    lambd: float | None = at_least(0.0, None)           # Barlow Twins
    sim_coeff: float | None = at_least(0.0, None)       # VICReg
    std_coeff: float | None = at_least(0.0, None)
    cov_coeff: float | None = at_least(0.0, None)
    eps: float | None = above(0.0, None)                # Barlow Twins, VICReg
    teacher_temp: float | None = above(0.0, None)       # DINO, Dino+n
    student_temp: float | None = above(0.0, None)
    center_momentum: float | None = between(0.0, 1.0, None)
    ema_start: float | None = between(0.0, 1.0, None)
    local_crops: int | None = at_least(0, None)
    local_scale: tuple[float, float] | None = between(0.0, 1.0, None)
    local_size: int | None = at_least(1, None)
    norm_last_layer: bool | None = None


@dataclass
class EncoderTrainConfig(EncoderSchedule):
    method: str = one_of(*METHODS, default="simclr")
    model: dict = field(default_factory=dict)     # TinyEncoderConfig's keys (checked by the settings check)
    augment: dict = field(default_factory=dict)   # AugmentConfig's keys
    loss: dict = field(default_factory=dict)      # EncoderLoss's keys

    def resolved(self) -> "EncoderTrainConfig":
        """Method defaults merged under the explicit settings."""
        if self.method not in METHODS:
            raise ValueError(f"unknown encoder training method {self.method!r}; expected one of {METHODS}")
        d = METHOD_DEFAULTS[self.method]
        out = copy.deepcopy(self)
        out.model = {**d["model"], **self.model, "method": self.method}
        out.augment = {**d["augment"], **self.augment}
        out.loss = {**d["loss"], **self.loss}
        unknown = set(out.loss) - _loss_options(self.method)
        if unknown:  # a typo would otherwise be ignored (DINO) or fail only once training starts
            raise ValueError(f"unknown {self.method} loss option(s) {sorted(unknown)}; "
                             f"expected some of {sorted(_loss_options(self.method))}")
        return out

    def to_dict(self) -> dict:
        return asdict(self)


_VARIANT_KEYS = ("train", "model", "loss", "augment")


def _loss_options(method: str) -> set[str]:
    """The loss settings a method reads: DINO's from its defaults, the others' from their loss function."""
    if method.startswith("dino"):
        return set(METHOD_DEFAULTS[method]["loss"])
    fn = {"supervised": supervised_ce, "simclr": nt_xent, "barlow": barlow_twins_loss, "vicreg": vicreg_loss}[method]
    return set(list(inspect.signature(fn).parameters)[2:])


def encoder_train_config(profile: dict, method: str, variant: dict | None = None) -> EncoderTrainConfig:
    """The training config of `method` under a profile's `encoders:` section.

    Layers, later wins: `encoders.train` and `encoders.model`; `encoders.per_method.<method>`
    (its train/model/loss/augment keys); `encoders.steps.<method>`; then `variant`, the same keys
    plus `steps` (scripts/sweep_encoders.py). The seed is the profile's data seed unless a train
    key sets it (e.g. a variant `train: {seed: 1}` to measure run-to-run spread).
    """
    ecfg = profile.get("encoders") or {}
    variant = dict(variant or {})
    unknown = set(variant) - {*_VARIANT_KEYS, "steps"}
    if unknown:
        raise ValueError(f"unknown encoder setting(s) {sorted(unknown)}; "
                         f"expected any of {sorted({*_VARIANT_KEYS, 'steps'})}")
    per = (ecfg.get("per_method") or {}).get(method) or {}
    merged = {k: {**(per.get(k) or {}), **(variant.get(k) or {})} for k in _VARIANT_KEYS}
    steps = variant.get("steps") or (ecfg.get("steps") or {}).get(method, 1000)
    seed = int((profile.get("data") or {}).get("seed", profile.get("seed", 0)))
    return EncoderTrainConfig(method=method, steps=int(steps),
                              model={**(ecfg.get("model") or {}), **merged["model"]}, augment=merged["augment"],
                              loss=merged["loss"], **{"seed": seed, **(ecfg.get("train") or {}), **merged["train"]})


def _lr_at(step: int, cfg: EncoderTrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * p))


def time_encoder_step(images: torch.Tensor, labels: torch.Tensor | None, cfg: EncoderTrainConfig,
                      device: str | torch.device = "cpu", n: int = 10, warm: int = 2) -> float:
    """Seconds per training step of `cfg` on this machine: `warm` + `n` real steps of a throw-away model, less
    the `warm` first ones (which build the kernels). What `train_encoder.py --time-budget` plans with."""
    if n < 1 or warm < 1:
        raise ValueError(f"need n >= 1 and warm >= 1, got n={n}, warm={warm}")
    seconds = [train_tiny_encoder(images, labels, replace(cfg, steps=k), device=device,
                                  progress=False)[1]["seconds"] for k in (warm, warm + n)]
    return max(seconds[1] - seconds[0], 1e-6) / n


@holding_run_dir
def train_tiny_encoder(images: torch.Tensor, labels: torch.Tensor | None, cfg: EncoderTrainConfig,
                       device: str | torch.device = "cpu", progress: bool = True, log=None,
                       cuda_graph: bool = False, run_dir=None, ckpt_every: int = 500,
                       stop_after: int | None = None) -> tuple[TinyEncoder, dict]:
    """Train a tiny encoder on uint8 `images` [N x 3 x H x W] (labels only for supervised).

    run_dir: a folder for checkpoints every `ckpt_every` steps (model, DINO's teacher and centre, optimizer,
    the batch and view generators): a run in a folder that holds one of the same config continues from it, to
    the weights of a run never stopped (a long ViT run outlasts a session). One of another config is an error.
    Not under a CUDA graph. stop_after: return after that many steps (as a kill would stop it; tests).

    cuda_graph: on a GPU, the whole step (views, forward, loss, backward, AdamW, DINO's teacher EMA) is
    captured once as a CUDA graph and replayed (rcdm_lib/training/graphs.py); the batches are the same as
    without it, the views' random draws come from the default CUDA generator instead. Ignored on a CPU.
    Returns (model in eval mode on cpu, history dict with loss curve and wall time).
    """
    cfg = cfg.resolved()
    if cfg.method == "supervised" and labels is None:
        raise ValueError("supervised training needs labels (the shape factor); got labels=None")
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    graphed = bool(cuda_graph) and on_gpu
    torch.manual_seed(cfg.seed)  # also seeds the default CUDA generator, which a graph's views draw from
    g = torch.Generator(device="cpu").manual_seed(cfg.seed)  # batch indices
    # The views' randomness is drawn where the images are (a CPU generator cannot feed CUDA ops);
    # on CPU it is `g` itself, so CPU runs stay as they were.
    ga = g if not on_gpu else None if graphed else torch.Generator(device=device).manual_seed(cfg.seed)
    mcfg = TinyEncoderConfig.from_dict({**cfg.model, "image_size": images.shape[-1]})
    model = TinyEncoder(mcfg).to(device)
    teacher = dino_loss = None
    if cfg.method.startswith("dino"):
        teacher = copy.deepcopy(model).requires_grad_(False)
        dino_loss = DINOLoss(mcfg.prototypes, cfg.loss["teacher_temp"], cfg.loss["student_temp"],
                             cfg.loss["center_momentum"]).to(device)
        # DINO's norm_last_layer: the prototypes' weight-norm gain stays 1, so the logits stay cosines
        model.prototypes.parametrizations.weight.original0.requires_grad_(not cfg.loss.get("norm_last_layer", False))
    augment = SSLAugment(AugmentConfig.from_dict(cfg.augment))
    local_augment = None
    if cfg.method.startswith("dino") and cfg.loss.get("local_crops", 0):
        local_augment = SSLAugment(AugmentConfig.from_dict({**cfg.augment, "crop_scale": tuple(cfg.loss["local_scale"]),
                                                            "out_size": int(cfg.loss["local_size"])}))
    if graphed:  # the learning rate a device tensor the graph reads; the optimizer's state on the device
        opt = torch.optim.AdamW(model.parameters(), lr=torch.tensor(cfg.lr, device=device),
                                weight_decay=cfg.weight_decay, capturable=True, foreach=True)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bf16 = use_bf16(device, cuda=False, cpu=cfg.cpu_bf16)  # GPU runs stay fp32, as the sweeps measured them
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    history = {"loss": [], "step": []}
    n = images.shape[0]
    start, prior_seconds = 0, 0.0
    ckpt = latest_checkpoint(run_dir, log=log or print) if run_dir is not None and not graphed else None
    if ckpt is not None:
        saved = load_checkpoint(ckpt, keys=("step", "config", "model", "opt", "g"))
        if saved["config"] != cfg.to_dict():
            raise ValueError(f"cannot continue from {ckpt}: it was trained with another config:\n  "
                             + "\n  ".join(config_mismatches(saved["config"], cfg.to_dict())))
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        if teacher is not None:
            teacher.load_state_dict(saved["teacher"])
            dino_loss.load_state_dict(saved["dino_loss"])
        g.set_state(saved["g"])
        if ga is not None and ga is not g:
            ga.set_state(saved["ga"])
        history = saved["history"]
        start, prior_seconds = int(saved["step"]) + 1, float(saved["seconds"])
        if log is not None:
            log(f"{cfg.method}: continuing from {ckpt} at step {start}")
    it = range(start, cfg.steps)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(it, desc=f"train {cfg.method}", mininterval=5.0)
        it = bar
    if on_gpu:  # the split on the GPU once (uint8): a copy per step from pageable memory makes the host wait
        images = images.to(device)
        labels = labels.to(device) if labels is not None else None
    # per-step settings the body reads: DINO's prototype freeze (first 5% of steps, an eager step) and its
    # teacher EMA rate (a device tensor under a graph)
    state = {"freeze": False, "momentum": torch.zeros((), device=device) if graphed else 0.0}
    loss_fns = {"simclr": nt_xent, "barlow": barlow_twins_loss, "vicreg": vicreg_loss}

    def body() -> torch.Tensor:
        (idx,) = stepper.inputs
        x = images[idx].float() / 127.5 - 1
        if cfg.method == "supervised":
            with amp:
                out = model(augment(x, ga))
            loss = supervised_ce(out.float(), labels[idx])
        else:
            v1, v2 = augment(x, ga), augment(x, ga)
            if cfg.method.startswith("dino"):
                views = [v1, v2]
                if local_augment is not None:
                    views += [local_augment(x, ga) for _ in range(cfg.loss["local_crops"])]
                with amp:
                    s = [model.prototype_logits(model(v)) for v in views]
                    with torch.no_grad():
                        t = [teacher.prototype_logits(teacher(v)) for v in (v1, v2)]
                loss = dino_loss([o.float() for o in s], [o.float() for o in t])
            else:
                with amp:
                    z1, z2 = model(v1), model(v2)
                loss = loss_fns[cfg.method](z1.float(), z2.float(), **cfg.loss)
        loss.backward()
        if state["freeze"]:  # DINO freezes the prototypes' gradient in the first epoch; here: the first 5% of steps
            for p in model.prototypes.parameters():
                p.grad = None
        opt.step()
        if teacher is not None:
            ema_update(teacher, model, state["momentum"])
        return loss.detach()

    stepper = CapturedStep(body, lambda: opt.zero_grad(set_to_none=True), graph=graphed)
    t0 = time.time()
    model.train()
    for step in it:
        set_lr(opt, _lr_at(step, cfg))
        if teacher is not None:
            state["freeze"] = step < cfg.steps // 20
            m0 = cfg.loss["ema_start"]
            m = 1 - (1 - m0) * (math.cos(math.pi * step / cfg.steps) + 1) / 2
            if graphed:
                state["momentum"].fill_(m)
            else:
                state["momentum"] = m
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)  # drawn on the host, as on a CPU
        if on_gpu:
            idx = idx.pin_memory().to(device, non_blocking=True)
        loss = stepper.step([idx], capture=not state["freeze"])
        if run_dir is not None and not graphed and (step + 1) % ckpt_every == 0 and step + 1 < cfg.steps:
            save_checkpoint(run_dir, step, {
                "step": step, "config": cfg.to_dict(), "model": model.state_dict(), "opt": opt.state_dict(),
                "teacher": teacher.state_dict() if teacher is not None else {},
                "dino_loss": dino_loss.state_dict() if dino_loss is not None else {},
                "g": g.get_state(), "ga": ga.get_state() if ga is not None else g.get_state(),
                "history": history, "seconds": prior_seconds + time.time() - t0})
        if stop_after is not None and step + 1 - start >= stop_after:
            break
        if step % 10 and step != cfg.steps - 1:
            continue  # reading the loss waits for the device: every 10th step only
        lv = float(loss)
        history["loss"].append(lv)
        history["step"].append(step)
        if bar is not None:
            bar.set_postfix(loss=f"{lv:.4f}", refresh=False)
        if log is not None and (step % 100 == 0 or step == cfg.steps - 1):
            log(f"{cfg.method} step {step}/{cfg.steps} loss {lv:.4f} lr {_lr_at(step, cfg):.2e} {time.time() - t0:.0f}s"
                + (" (CUDA graph)" if stepper.captured else ""))
    final = teacher if teacher is not None else model  # DINO evaluates the teacher, as the paper does
    final = final.cpu().eval()
    history["seconds"] = prior_seconds + time.time() - t0
    history["bf16"] = bf16
    history["cuda_graph"] = stepper.captured
    history["config"] = cfg.to_dict()
    return final, history
