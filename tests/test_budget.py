"""Training within a time budget: the steps that fit, the shortened schedule, train.py --time-budget."""
import importlib.util
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from rcdm_lib.training import TrainConfig
from rcdm_lib.training.budget import budget_steps, budgeted_config, min_budget_steps, scaled_steps
from rcdm_lib.training.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def _train_script(name: str = "train"):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_budget_steps_fit_the_time_between_the_floor_and_the_recipe():
    assert budget_steps(100.0, 0.25, 14000, 1400) == 1400  # 400 fit, the floor wins (the budget is overrun)
    assert budget_steps(2500.0, 0.25, 14000, 1400) == 10000
    assert budget_steps(1e9, 0.25, 14000, 1400) == 14000
    assert budget_steps(-50.0, 0.25, 14000, 1400) == 1400  # no time left at all
    assert min_budget_steps(14000) == 1400 and min_budget_steps(5) == 1
    with pytest.raises(ValueError, match="step_seconds must be a positive number, got 0"):
        budget_steps(10.0, 0.0, 100, 10)
    with pytest.raises(ValueError, match="min_steps 200, full_steps 100"):
        budget_steps(10.0, 0.1, 100, 200)


def test_a_constant_rate_recipe_shortened_gets_the_falling_rate():
    cfg = TrainConfig(steps=14000, lr=5e-4, warmup_steps=200)
    assert budgeted_config(cfg, 14000) is cfg and budgeted_config(cfg, 20000) is cfg
    short = budgeted_config(cfg, 10000)
    assert (short.steps, short.lr_decay_start, short.lr_decay_end) == (10000, 3000, 10000)
    assert short.lr_final == pytest.approx(5e-5) and short.warmup_steps == 200
    # constant until 30%, a cosine to a tenth at the last step: half-way down in the middle of the window
    assert short.lr_at(2999) == pytest.approx(5e-4)
    assert short.lr_at(6500) == pytest.approx((5e-4 + 5e-5) / 2)
    assert short.lr_at(9999) == pytest.approx(5e-5, rel=1e-3)
    assert budgeted_config(cfg, 1000).warmup_steps == 100  # at most a tenth of the run


def test_a_decaying_recipe_shortened_keeps_its_shape():
    cfg = TrainConfig(steps=10000, lr=1e-4, lr_final=1e-5, lr_decay_start=2000, lr_decay_end=8000)
    short = budgeted_config(cfg, 5000)
    assert (short.lr_final, short.lr_decay_start, short.lr_decay_end) == (1e-5, 1000, 4000)
    for step in (0, 1500, 2500, 4999):  # the same rate at the same fraction of the run
        assert short.lr_at(step) == pytest.approx(cfg.lr_at(2 * step), rel=1e-3)


def _fit(train, monkeypatch, tmp_path, budget, probe_seconds, resume=False):
    """fit_time_budget with the probe's training steps replaced by a stub that took probe_seconds."""
    probes = []

    def fake_train(unet_cfg, diff_cfg, cfg, data, run_dir, **kw):
        probes.append((cfg, kw["stop_after"]))
        return SimpleNamespace(seconds=probe_seconds)

    monkeypatch.setattr(train, "train_rcdm", fake_train)
    args = SimpleNamespace(time_budget=budget, resume=resume)
    cfg = TrainConfig(steps=14000, lr=5e-4, warmup_steps=200, ckpt_every=500)
    out = train.fit_time_budget(args, None, None, cfg, None, tmp_path, SimpleNamespace(world_size=1), time.time())
    return out, probes


def test_time_budget_chooses_the_steps_from_the_timed_probe(monkeypatch, tmp_path, capsys):
    train = _train_script()
    # 20 probe steps in 4 s: 0.2 s a step; 2010 s budget -> about (2010 - 10) * 0.98 / 0.2 = 9800 steps
    cfg, probes = _fit(train, monkeypatch, tmp_path, 2010.0, 4.0)
    assert [n for _, n in probes] == [2, 20] and probes[1][0].ckpt_every > 14000  # a warm-up, then 20 timed steps
    assert 9780 <= cfg.steps <= 9800 and cfg.lr_decay_end == cfg.steps and cfg.lr_final == pytest.approx(5e-5)
    assert f"{cfg.steps} of 14000 steps at 320 img/s" in capsys.readouterr().out
    full, _ = _fit(train, monkeypatch, tmp_path, 1e6, 4.0)
    assert full.steps == 14000 and full.lr_final is None
    assert "the full 14000 steps fit" in capsys.readouterr().out
    floor, _ = _fit(train, monkeypatch, tmp_path, 60.0, 4.0)
    assert floor.steps == 1400 and "the budget is overrun" in capsys.readouterr().out


def test_time_budget_resume_keeps_the_choice_of_the_start(monkeypatch, tmp_path):
    train = _train_script()
    chosen = budgeted_config(TrainConfig(steps=14000, lr=5e-4, warmup_steps=200), 6000)
    (tmp_path / "config.json").write_text(json.dumps({"train": chosen.to_dict()}))
    save_checkpoint(tmp_path, 500, {"step": 500})    # a whole checkpoint (one cut short is passed over)
    cfg, probes = _fit(train, monkeypatch, tmp_path, 5.0, 4.0, resume=True)  # any budget: the run's own steps
    assert not probes and cfg.steps == 6000
    assert (cfg.lr_final, cfg.lr_decay_start, cfg.lr_decay_end) == (chosen.lr_final, 1800, 6000)


def test_time_budget_refuses_several_processes(tmp_path):
    train = _train_script()
    with pytest.raises(SystemExit, match="--time-budget needs one process .* got 2"):
        train.fit_time_budget(SimpleNamespace(time_budget=10.0, resume=False), None, None, TrainConfig(), None,
                              tmp_path, SimpleNamespace(world_size=2), time.time())


def test_scaled_steps_shorten_every_run_by_one_factor():
    step_s, full = {"dino": 0.1, "barlow": 0.05}, {"dino": 1000, "barlow": 2000}  # 100 s + 100 s in full
    assert scaled_steps(100.0, step_s, full) == {"dino": 500, "barlow": 1000}
    assert scaled_steps(150.0, step_s, full) == {"dino": 750, "barlow": 1500}
    assert scaled_steps(1e9, step_s, full) == full  # never longer than the recipe
    assert scaled_steps(5.0, step_s, full) == {"dino": 100, "barlow": 200}  # the floor: a tenth (overrun)
    with pytest.raises(ValueError, match="name other runs"):
        scaled_steps(100.0, {"dino": 0.1}, full)
    with pytest.raises(ValueError, match="positive numbers, got {'barlow': 0.0}"):
        scaled_steps(100.0, {"dino": 0.1, "barlow": 0.0}, full)


def test_train_encoder_time_budget_shortens_the_encoders_and_records_it(tmp_path, capsys):
    """train_encoder.py --time-budget: real steps timed, the steps that fit trained, the choice in the manifest."""
    import torch

    enc = _train_script("train_encoder")
    threads = ["--threads", str(torch.get_num_threads())]  # the default (1) would change this test process's setting
    assert enc.main(["--profile", "smoke", "--out-dir", str(tmp_path / "short"), "--time-budget", "0.5", *threads]) == 0
    out = capsys.readouterr().out
    assert "supervised 2 of 20 steps" in out and "simclr 2 of 20 steps" in out and "budget is overrun" in out
    man = json.loads((tmp_path / "short" / "manifest.json").read_text())
    assert {k: (e["steps"], e["full_steps"], e["time_budget_s"]) for k, e in man.items()} == {
        "supervised": (2, 20, 0.5), "simclr": (2, 20, 0.5)}
    assert enc.main(["--profile", "smoke", "--out-dir", str(tmp_path / "full"), "--time-budget", "600", *threads]) == 0
    assert "shorter than the recipe" not in capsys.readouterr().out
    man = json.loads((tmp_path / "full" / "manifest.json").read_text())
    assert [e["steps"] for e in man.values()] == [20, 20]
