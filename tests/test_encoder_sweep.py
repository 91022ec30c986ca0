"""The encoder settings' layering (profile < per_method < variant) and the sweep's install step."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rcdm_lib.config import REPO_ROOT, load_profile
from rcdm_lib.encoders.training import encoder_train_config

PROFILE = {
    "data": {"seed": 3},
    "encoders": {
        "model": {"width": 8, "stem_stride": 2},
        "train": {"batch_size": 128, "lr": 2e-3, "warmup_steps": 5},
        "steps": {"dino": 100, "simclr": 50},
        "per_method": {"dino": {"train": {"lr": 4e-3}, "loss": {"ema_start": 0.99}, "model": {"width": 16}}},
    },
}


def test_layers_later_wins():
    c = encoder_train_config(PROFILE, "dino")
    assert (c.lr, c.batch_size, c.steps, c.seed) == (4e-3, 128, 100, 3)
    assert c.model == {"width": 16, "stem_stride": 2} and c.loss == {"ema_start": 0.99}
    v = encoder_train_config(PROFILE, "dino", {"steps": 7, "train": {"batch_size": 64}, "loss": {"teacher_temp": 0.05}})
    assert (v.lr, v.batch_size, v.steps) == (4e-3, 64, 7)
    assert v.loss == {"ema_start": 0.99, "teacher_temp": 0.05}
    s = encoder_train_config(PROFILE, "simclr")  # per_method of another method does not leak
    assert (s.lr, s.steps, s.model, s.loss) == (2e-3, 50, {"width": 8, "stem_stride": 2}, {})


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="'batch'"):
        encoder_train_config(PROFILE, "dino", {"batch": 64})


def test_tiny_profile_resolves_for_every_method():
    prof = load_profile("tiny")
    for m in prof["encoders"]["methods"]:
        c = encoder_train_config(prof, m).resolved()
        assert c.steps == prof["encoders"]["steps"][m] and c.method == m


def test_sweep_installs_each_methods_best_variant(tmp_path):
    variants = [{"name": "sim_short", "method": "simclr", "steps": 2, "train": {"batch_size": 16}},
                {"name": "sim_long", "method": "simclr", "steps": 30, "train": {"batch_size": 32}},
                {"name": "sup", "method": "supervised", "steps": 30}]
    vfile = tmp_path / "v.yaml"
    vfile.write_text(yaml.safe_dump(variants))
    out = tmp_path / "sweep"
    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "sweep_encoders.py"), "--profile", "smoke",
                        "--variants", str(vfile), "--out", str(out), "--workers", "2", "--device", "cpu", "--install",
                        "--install-dir", str(tmp_path / "enc")], capture_output=True, text=True, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    results = {json.loads(line)["name"]: json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()}
    assert set(results) == {"sim_short", "sim_long", "sup"}
    best = max(("sim_short", "sim_long"), key=lambda n: results[n]["shape_probe"])
    manifest = json.loads((tmp_path / "enc" / "manifest.json").read_text())
    assert set(manifest) == {"simclr", "supervised"}
    assert manifest["simclr"]["variant"]["name"] == best
    assert (tmp_path / "enc" / "simclr.safetensors").read_bytes() == (out / f"{best}.safetensors").read_bytes()
    winners = yaml.safe_load((out / "winners.yaml").read_text())
    assert winners["simclr"] == {k: v for k, v in results[best]["variant"].items() if k not in ("name", "method")}


def test_encoder_groups_partition_and_balance():
    from rcdm_lib.pipeline import encoder_groups

    prof = {"encoders": {"methods": ["supervised", "simclr", "barlow", "dino"],
                         "steps": {"supervised": 800, "simclr": 1400, "barlow": 2100, "dino": 1400}}}
    groups = encoder_groups(prof)
    assert sorted(m for g in groups for m in g) == sorted(prof["encoders"]["methods"])
    cost = {"supervised": 800, "simclr": 2800, "barlow": 4200, "dino": 2800}
    loads = sorted(sum(cost[m] for m in g) for g in groups)
    assert loads == [5000, 5600]
    assert encoder_groups({"encoders": {"methods": ["simclr"]}}) == [["simclr"]]
