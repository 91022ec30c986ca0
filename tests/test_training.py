"""The training loop: exact resume after SIGKILL, DDP (gloo, torchrun), NaN stop, config mismatch."""
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rcdm_lib.precision import cpu_has_fast_bf16
from rcdm_lib.training import DiffusionConfig, TrainConfig, TrainingDiverged, train_rcdm
from rcdm_lib.training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from rcdm_lib.training.metrics_log import read_metrics
from rcdm_lib.unet import save_unet

sys.path.insert(0, str(Path(__file__).parent))
from _train_worker import make_data, unet_config  # noqa: E402

WORKER = str(Path(__file__).parent / "_train_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent)}


def _run(*args, check=True):
    return subprocess.run([sys.executable, WORKER, *args], env=ENV, check=check, capture_output=True, text=True,
                          timeout=600)


def _final_weights(run_dir):
    return load_checkpoint(latest_checkpoint(run_dir))["model"]


def test_sigkill_then_resume_gives_the_uninterrupted_weights(tmp_path):
    _run(str(tmp_path / "ref"), "--steps", "8", "--ckpt-every", "2")
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, WORKER, str(run), "--steps", "8", "--ckpt-every", "2"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list_checkpoints(run) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = int(load_checkpoint(latest_checkpoint(run))["step"])
    assert killed_at < 8, "the run finished before it could be killed; the test proves nothing"
    _run(str(run), "--steps", "8", "--ckpt-every", "2", "--resume")
    ref, got = _final_weights(tmp_path / "ref"), _final_weights(run)
    assert load_checkpoint(latest_checkpoint(run))["step"] == 8
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == list(range(1, 9)), "metrics of the resumed run must be one consistent sequence"


def test_ddp_two_processes_match_single_process_on_combined_batch(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    subprocess.run([*torchrun, WORKER, str(tmp_path / "ddp"), "--steps", "3", "--batch", "4", "--ckpt-every", "3",
                    "--dump", str(tmp_path / "ddp_w")], env=ENV, check=True, capture_output=True, timeout=600)
    _run(str(tmp_path / "single"), "--steps", "3", "--batch", "8", "--ckpt-every", "3",
         "--dump", str(tmp_path / "single_w"))
    r0 = torch.load(f"{tmp_path}/ddp_w.rank0", weights_only=True)
    r1 = torch.load(f"{tmp_path}/ddp_w.rank1", weights_only=True)
    single = torch.load(f"{tmp_path}/single_w.rank0", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"ranks disagree on {k}"
        # Adam normalises each gradient element, so float reduction-order noise on elements
        # whose gradient is near zero moves them by a fraction of one step (lr = 1e-3): measured
        # max 5e-5 after 3 steps; a tenth of a step is the tolerance.
        torch.testing.assert_close(r0[k], single[k], rtol=0, atol=1e-4, msg=k)
    # the comparison has power: the weights moved away from their initialisation
    from rcdm_lib.unet import UNet

    torch.manual_seed(0)
    fresh = UNet(unet_config()).state_dict()
    assert max((fresh[k] - single[k]).abs().max().item() for k in fresh) > 1e-3


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    data = make_data()
    run = tmp_path / "run"
    cfg = TrainConfig(steps=4, batch_size=8, ckpt_every=2, log_every=1, seed=0)
    train_rcdm(unet_config(), DiffusionConfig(), cfg, data, run, progress=False, stop_after=2)
    good = latest_checkpoint(run)
    data.features["a"][:] = float("nan")
    data.features["b"][:] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"at step 2; .*ckpt_00000002\.pt"):
        train_rcdm(unet_config(), DiffusionConfig(), cfg, data, run, resume=True, progress=False)
    assert latest_checkpoint(run) == good
    assert torch.isfinite(next(iter(load_checkpoint(good)["model"].values()))).all()


def test_a_nan_between_checks_is_named_by_its_step_and_never_checkpointed(tmp_path):
    """The loss is read back only at log, checkpoint and preview steps; the first bad step is still named and
    no checkpoint after it is written."""
    data = make_data()
    run = tmp_path / "run"
    cfg = TrainConfig(steps=12, batch_size=8, ckpt_every=4, log_every=10, seed=0)
    train_rcdm(unet_config(), DiffusionConfig(), cfg, data, run, progress=False, stop_after=4)
    data.features["a"][:] = float("nan")
    data.features["b"][:] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"at step 4; .*ckpt_00000004\.pt"):
        train_rcdm(unet_config(), DiffusionConfig(), cfg, data, run, resume=True, progress=False)
    assert [p.name for p in list_checkpoints(run)] == ["ckpt_00000004.pt"]
    with pytest.raises(TrainingDiverged, match=r"at step 4;"):  # stopped between checks: still refused
        train_rcdm(unet_config(), DiffusionConfig(), cfg, data, run, resume=True, progress=False, stop_after=1)


def test_resume_with_another_config_names_the_fields(tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(steps=2, batch_size=8, ckpt_every=2, seed=0)
    train_rcdm(unet_config(), DiffusionConfig(), cfg, make_data(), run, progress=False)
    other = TrainConfig(steps=4, batch_size=8, ckpt_every=2, seed=0, lr=5e-4, bf16=False, compile=True)
    from rcdm_lib.unet import UNetConfig

    wider = UNetConfig(**{**unet_config().to_dict(), "model_channels": 64,
                          "rep_slots": tuple(map(tuple, unet_config().rep_slots))})
    with pytest.raises(ValueError) as e:
        train_rcdm(wider, DiffusionConfig(), other, make_data(), run, resume=True, progress=False)
    msg = str(e.value)
    assert "unet.model_channels: checkpoint has 32, this run has 64" in msg
    assert "train.lr: checkpoint has 0.0001, this run has 0.0005" in msg
    for field in ("steps", "bf16", "compile"):  # run-only fields may change on resume
        assert f"train.{field}" not in msg
    with pytest.raises(ValueError, match="already holds checkpoints; pass --resume"):
        train_rcdm(unet_config(), DiffusionConfig(), cfg, make_data(), run, progress=False)


def test_partial_checkpoint_files_are_never_resumed_from(tmp_path):
    save_checkpoint(tmp_path, 2, {"step": 2})
    (tmp_path / ".ckpt_00000004.pt.tmp999").write_bytes(b"\x80partial")
    (tmp_path / "ckpt_00000004.pt.tmp").write_bytes(b"\x80partial")
    assert latest_checkpoint(tmp_path).name == "ckpt_00000002.pt"
    save_checkpoint(tmp_path, 3, {"step": 3}, keep_last=1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_00000003.pt"]
    assert not (tmp_path / ".ckpt_00000004.pt.tmp999").exists()


def test_a_newest_checkpoint_cut_short_falls_back_to_the_one_before(tmp_path):
    save_checkpoint(tmp_path, 2, {"step": 2})
    save_checkpoint(tmp_path, 4, {"step": 4})
    whole = (tmp_path / "ckpt_00000004.pt").read_bytes()
    (tmp_path / "ckpt_00000004.pt").write_bytes(whole[: len(whole) // 2])     # a full disk or a copy killed halfway
    said = []
    assert latest_checkpoint(tmp_path, log=said.append).name == "ckpt_00000002.pt"
    assert "ckpt_00000004.pt" in said[0] and "cut short" in said[0]
    assert (tmp_path / "ckpt_00000004.pt.truncated").is_file()            # kept for a look, never listed again
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_00000002.pt"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 2


@pytest.mark.slow
def test_compiled_training_step_gives_the_eager_weights(tmp_path):
    """torch.compile changes how the step runs, not what it computes (CPU, 3 steps; ~1 min of compiling)."""
    finals = {}
    for compiled in (False, True):
        cfg = TrainConfig(steps=3, batch_size=8, ckpt_every=3, seed=0, compile=compiled)
        train_rcdm(unet_config(), DiffusionConfig(), cfg, make_data(), tmp_path / str(compiled), progress=False)
        finals[compiled] = _final_weights(tmp_path / str(compiled))
    assert finals[True].keys() == finals[False].keys()
    for k, v in finals[False].items():
        torch.testing.assert_close(finals[True][k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_ema_follows_the_closed_form_over_several_updates():
    """After updates with weights w_1..w_k: ema = r^k w_0 + (1 - r) sum_i r^(k - i) w_i (buffers copied)."""
    from rcdm_lib.training.ema import EMA

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    r = 0.9
    ema = EMA(net, r)
    w = [net[0].weight.detach().clone()]
    for _ in range(3):
        with torch.no_grad():
            net[0].weight.add_(torch.randn_like(net[0].weight))
            net[1].running_mean.add_(1.0)
        w.append(net[0].weight.detach().clone())
        ema.update(net)
    k = len(w) - 1
    expected = r ** k * w[0] + (1 - r) * sum(r ** (k - i) * w[i] for i in range(1, k + 1))
    torch.testing.assert_close(ema.model[0].weight, expected)
    torch.testing.assert_close(ema.model[1].running_mean, net[1].running_mean)
    assert not any(p.requires_grad for p in ema.model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resume_on_cuda_continues_the_run(tmp_path):
    """A checkpoint loaded with map_location=cuda carries the CPU RNG state onto the GPU; resume must restore it
    (the H100 run of 2026-11-27 failed here with 'RNG state must be a torch.ByteTensor')."""
    from rcdm_lib.training.distributed import DistInfo

    info = DistInfo(device=torch.device("cuda"))
    cfg = TrainConfig(steps=4, batch_size=8, ckpt_every=2, seed=0)
    train_rcdm(unet_config(), DiffusionConfig(), cfg, make_data(), tmp_path, progress=False, info=info, stop_after=2)
    res = train_rcdm(unet_config(), DiffusionConfig(), cfg, make_data(), tmp_path, resume=True, progress=False,
                     info=info)
    assert res.step == 4 and load_checkpoint(latest_checkpoint(tmp_path))["step"] == 4


@pytest.mark.skipif(not cpu_has_fast_bf16(),
                    reason="this CPU has no AMX/AVX512-BF16")
def test_cpu_bf16_training_follows_the_fp32_run(tmp_path):
    """cpu_bf16 changes the arithmetic, not the objective: the same run's losses agree to bf16 accuracy."""
    losses = {}
    for bf16 in (False, True):
        cfg = TrainConfig(steps=6, batch_size=8, ckpt_every=6, log_every=1, seed=0, cpu_bf16=bf16)
        train_rcdm(unet_config(), DiffusionConfig(), cfg, make_data(), tmp_path / str(bf16), progress=False)
        losses[bf16] = [r["loss"] for r in read_metrics(tmp_path / str(bf16)) if "loss" in r]
    assert len(losses[True]) == len(losses[False]) == 6
    assert losses[True] != losses[False]  # the bf16 run did run in bf16
    for a, b in zip(losses[False], losses[True]):
        assert abs(a - b) <= 0.05 * abs(a), (losses[False], losses[True])


def test_warm_start_takes_the_weights_and_this_datas_statistics(tmp_path):
    """init_from: the source run's weights and EMA, step 0, a fresh optimizer, the new data's rep statistics."""
    from rcdm_lib.training.data import SlotFeatureSource

    ucfg = unet_config(rep_standardise=True)
    cfg = TrainConfig(steps=4, batch_size=8, ckpt_every=4, seed=0)
    src = train_rcdm(ucfg, DiffusionConfig(), cfg, make_data(), tmp_path / "a", progress=False)
    ckpt = latest_checkpoint(tmp_path / "a")
    old = make_data()
    feats = {k: (v.float() * 3 + 1).half() for k, v in old.features.items()}  # slot "a" and "b" rescaled
    new = SlotFeatureSource(old.images, feats, old.layout, p_null=old.p_null)
    res = train_rcdm(ucfg, DiffusionConfig(), TrainConfig(steps=0, batch_size=8, ckpt_every=4, seed=1), new,
                     tmp_path / "b", progress=False, init_from=ckpt)
    assert res.step == 0
    want_mean, want_std = new.rep_statistics()
    for got, ref in ((res.model, src.model), (res.ema, src.ema)):
        torch.testing.assert_close(got.rep_mean, want_mean.float())
        torch.testing.assert_close(got.rep_std, want_std.float())
        assert not torch.allclose(got.rep_mean, ref.rep_mean)
        for (k, v), (k2, v2) in zip(got.state_dict().items(), ref.state_dict().items()):
            if k not in ("rep_mean", "rep_std"):
                torch.testing.assert_close(v, v2, msg=k)
    with pytest.raises(ValueError, match="model_channels"):
        train_rcdm(dataclasses.replace(ucfg, model_channels=64), DiffusionConfig(), cfg, new,
                   tmp_path / "c", progress=False, init_from=ckpt)
    with pytest.raises(FileNotFoundError, match="--init-from .*none.pt does not exist"):
        train_rcdm(ucfg, DiffusionConfig(), cfg, new, tmp_path / "d", progress=False, init_from=tmp_path / "none.pt")
    # an exported EMA model (the shipped artifact) starts both the weights and the EMA
    save_unet(tmp_path / "ema.safetensors", src.ema)
    res = train_rcdm(ucfg, DiffusionConfig(), TrainConfig(steps=0, batch_size=8, ckpt_every=4, seed=1), new,
                     tmp_path / "e", progress=False, init_from=tmp_path / "ema.safetensors")
    for got in (res.model, res.ema):
        torch.testing.assert_close(got.rep_mean, want_mean.float())
        for (k, v), (k2, v2) in zip(got.state_dict().items(), src.ema.state_dict().items()):
            if k not in ("rep_mean", "rep_std"):
                torch.testing.assert_close(v, v2, msg=k)
    with pytest.raises(ValueError, match="model_channels"):
        train_rcdm(dataclasses.replace(ucfg, model_channels=64), DiffusionConfig(), cfg, new,
                   tmp_path / "f", progress=False, init_from=tmp_path / "ema.safetensors")


def _train_final(run_dir, info=None, stop_after=None, resume=False, **fields):
    cfg = TrainConfig(**{"steps": 6, "batch_size": 8, "ckpt_every": 3, "seed": 0, "lr": 1e-3, "warmup_steps": 4,
                         "grad_clip": 0.5, **fields})
    res = train_rcdm(unet_config(), DiffusionConfig(), cfg, make_data(), run_dir, progress=False, info=info,
                     stop_after=stop_after, resume=resume)
    state = load_checkpoint(latest_checkpoint(run_dir))
    return res, state


def test_lr_schedule_warms_up_then_decays_to_lr_final():
    cfg = TrainConfig(lr=1e-3, warmup_steps=4, lr_final=1e-4, lr_decay_start=10, lr_decay_end=30)
    assert [cfg.lr_at(s) for s in range(4)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert cfg.lr_at(9) == cfg.lr_at(10) == pytest.approx(1e-3)
    assert cfg.lr_at(20) == pytest.approx(5.5e-4)  # half way: the mean of lr and lr_final
    assert cfg.lr_at(30) == cfg.lr_at(10**6) == pytest.approx(1e-4)
    lrs = [cfg.lr_at(s) for s in range(4, 40)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert TrainConfig(lr=1e-3, warmup_steps=0).lr_at(10**6) == 1e-3  # no lr_final: constant
    with pytest.raises(ValueError, match="lr_decay_start 5, lr_decay_end 5"):
        TrainConfig(lr_final=1e-4, lr_decay_start=5, lr_decay_end=5)


def test_a_run_follows_its_lr_schedule_and_resumes_a_checkpoint_older_than_it(tmp_path):
    """The logged learning rate is lr_at of each step; a checkpoint written before TrainConfig had the schedule
    fields resumes (they take their defaults), and resuming it with a schedule names the field that differs."""
    sched = dict(lr_final=1e-4, lr_decay_start=1, lr_decay_end=5, log_every=1)
    _train_final(tmp_path / "sched", **sched)
    cfg = TrainConfig(**{"steps": 6, "lr": 1e-3, "warmup_steps": 4, **sched})
    logged = {r["step"]: r["lr"] for r in read_metrics(tmp_path / "sched")}
    assert sorted(logged) == [1, 2, 3, 4, 5, 6]
    for step, lr in logged.items():  # the record of step s follows optimizer step s - 1
        assert lr == pytest.approx(cfg.lr_at(step - 1), rel=1e-6)

    run = tmp_path / "old"
    _train_final(run, stop_after=3)
    ckpt = latest_checkpoint(run)
    state = load_checkpoint(ckpt)
    for k in ("lr_final", "lr_decay_start", "lr_decay_end"):
        del state["config"]["train"][k]  # as written before the fields existed
    save_checkpoint(run, int(state["step"]), state)
    with pytest.raises(ValueError, match="train.lr_final: checkpoint has None"):
        _train_final(run, resume=True, lr_final=1e-4, lr_decay_start=1, lr_decay_end=5)
    res, final = _train_final(run, resume=True)
    assert res.step == final["step"] == 6


def test_static_buffer_step_computes_the_eager_step(tmp_path):
    """cuda_graph's step (static inputs, clipping, AdamW, EMA in one body) equals the eager loop's step; on a CPU
    it runs without a graph, so weights, EMA and optimizer moments agree exactly."""
    _, eager = _train_final(tmp_path / "eager")
    _, graphed = _train_final(tmp_path / "graph", cuda_graph=True)
    for part in ("model", "ema"):
        for k, v in eager[part].items():
            torch.testing.assert_close(graphed[part][k], v, rtol=0, atol=0, msg=f"{part}.{k}")
    m_eager = [s["exp_avg_sq"] for s in eager["optimizer"]["state"].values()]
    m_graph = [s["exp_avg_sq"] for s in graphed["optimizer"]["state"].values()]
    assert len(m_eager) == len(m_graph) > 0
    for a, b in zip(m_eager, m_graph):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_cuda_graph_with_gradient_accumulation_takes_the_ordinary_step(tmp_path, capsys):
    _, eager = _train_final(tmp_path / "eager", grad_accum=2)
    _, graphed = _train_final(tmp_path / "graph", grad_accum=2, cuda_graph=True)
    assert "the ordinary step instead" in capsys.readouterr().out
    for k, v in eager["model"].items():
        torch.testing.assert_close(graphed["model"][k], v, rtol=0, atol=0, msg=k)


def test_optimizer_mode_is_this_runs_after_loading_another_modes_checkpoint():
    """A checkpoint of a capturable CUDA-graph run (lr a tensor, step counters on the device) resumed by an
    ordinary run gets that run's flags, a float lr and CPU step counters, and the reverse."""
    from rcdm_lib.training.loop import _optimizer_options, _restore_optimizer_options

    p = torch.nn.Parameter(torch.randn(4))
    plain = torch.optim.AdamW([p], lr=1e-3)
    options = _optimizer_options(plain)
    p.grad = torch.ones(4)
    plain.step()
    sd = plain.state_dict()
    sd["param_groups"][0].update(lr=torch.tensor(5e-4), capturable=True, foreach=True, fused=None)
    plain.load_state_dict(sd)
    _restore_optimizer_options(plain, options, torch.device("cpu"))
    group = plain.param_groups[0]
    assert group["lr"] == pytest.approx(5e-4) and not torch.is_tensor(group["lr"])
    assert group["capturable"] is False and group["foreach"] is None
    plain.step()  # a capturable group would refuse CPU parameters here
    assert plain.state[p]["step"].item() == 2.0

    graph_options = {"lr_tensor": True, "capturable": True, "foreach": True, "fused": None}
    _restore_optimizer_options(plain, graph_options, torch.device("cpu"))
    assert torch.is_tensor(plain.param_groups[0]["lr"]) and plain.param_groups[0]["capturable"] is True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_training_follows_the_eager_run_and_resumes_either_way(tmp_path, monkeypatch):
    """On a GPU: 3 eager warm-up steps, one capture, replays; the weights follow the eager (fused AdamW) run to
    float accuracy, and a graph run's checkpoint resumes without the graph and the reverse."""
    from rcdm_lib.training.distributed import DistInfo

    # one arithmetic for both runs: with TF32 convolutions and cuDNN's free choice of algorithms the two runs
    # drifted 2.5% apart in 8 steps on an H100 (2026-11-27), as Adam's first steps amplify rounding
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    info = DistInfo(device=torch.device("cuda"))
    _, eager = _train_final(tmp_path / "eager", info=info, steps=8, ckpt_every=8)
    _, graphed = _train_final(tmp_path / "graph", info=info, steps=8, ckpt_every=8, cuda_graph=True)
    from rcdm_lib.unet import UNet

    torch.manual_seed(0)  # the loop's initial weights (seed 0)
    init = UNet(unet_config()).state_dict()
    keys = [k for k, v in init.items() if v.is_floating_point() and not k.startswith("rep_")]
    d_eager = torch.cat([(eager["model"][k].cpu() - init[k]).flatten() for k in keys])
    d_graph = torch.cat([(graphed["model"][k].cpu() - init[k]).flatten() for k in keys])
    # 5 of the 8 steps are graph replays; one step missing or repeated moves the update by over 10%
    assert d_eager.norm() > 0 and (d_graph - d_eager).norm() <= 0.03 * d_eager.norm(), (d_graph - d_eager).norm()
    assert graphed["step"] == 8
    # graph -> eager -> graph on one run folder
    _train_final(tmp_path / "mixed", info=info, steps=12, ckpt_every=4, cuda_graph=True, stop_after=4)
    _train_final(tmp_path / "mixed", info=info, steps=12, ckpt_every=4, resume=True, stop_after=4)
    res, state = _train_final(tmp_path / "mixed", info=info, steps=12, ckpt_every=4, resume=True, cuda_graph=True)
    assert res.step == 12 and state["step"] == 12
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def _slot_counts(src, n_draws=4000):
    """How often each slot (or the null condition) is filled over n_draws examples with their own generators."""
    idx = torch.arange(n_draws) % len(src)
    gens = [torch.Generator().manual_seed(i) for i in range(n_draws)]
    _, kw = src.batch(idx, gens)
    a, b = kw["rep"][:, :4].abs().sum(1) > 0, kw["rep"][:, 4:].abs().sum(1) > 0
    assert not (a & b).any()
    return torch.stack([a, b, ~(a | b)]).sum(1).tolist(), kw["rep"]


def test_slot_weights_set_how_often_each_slot_is_drawn():
    """Slots in proportion to their weights (binomial bounds), uniform without them, and the uniform draws are
    unchanged bit for bit; weights naming an unknown slot, or all zero, are refused with the slots named."""
    from rcdm_lib.training.data import SlotFeatureSource

    base = make_data()
    (a0, b0, null0), rep0 = _slot_counts(base)
    n = a0 + b0
    assert abs(a0 / n - 0.5) < 4 * (0.25 / n) ** 0.5 and abs(null0 / 4000 - 0.25) < 4 * (0.1875 / 4000) ** 0.5
    weighted = SlotFeatureSource(base.images, base.features, base.layout, p_null=0.25, slot_weights={"a": 3})
    (a, b, null), _ = _slot_counts(weighted)
    assert null == null0  # the null draw does not depend on the weights
    assert abs(a / (a + b) - 0.75) < 4 * (0.75 * 0.25 / (a + b)) ** 0.5, (a, b)
    same = SlotFeatureSource(base.images, base.features, base.layout, p_null=0.25, slot_weights={"a": 1, "b": 1})
    assert torch.equal(_slot_counts(same)[1], rep0)
    only_b = SlotFeatureSource(base.images, base.features, base.layout, p_null=0.25, slot_weights={"a": 0})
    assert _slot_counts(only_b)[0][0] == 0
    assert weighted.describe()["slot_weights"] == {"a": 3} and "slot_weights" not in base.describe()
    with pytest.raises(ValueError, match=r"\['c'\].*\['a', 'b'\]"):
        SlotFeatureSource(base.images, base.features, base.layout, slot_weights={"c": 2})
    with pytest.raises(ValueError, match="not all 0"):
        SlotFeatureSource(base.images, base.features, base.layout, slot_weights={"a": 0, "b": 0})
