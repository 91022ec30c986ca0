"""The encoder settings' layering (profile < per_method < variant) and the sweep's install step."""
import json
import subprocess
import sys

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


def test_a_variant_may_set_its_seed():
    """The data seed is the default; a variant's train.seed (run-to-run spread) wins instead of clashing."""
    assert encoder_train_config(PROFILE, "dino", {"train": {"seed": 1}}).seed == 1
    assert encoder_train_config(PROFILE, "dino", {"train": {"lr": 1e-3}}).seed == 3


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
    log = (out / "sim_long.log").read_text().splitlines()  # progress of each variant, step 0 and the last
    assert "simclr step 0/30" in log[0] and "simclr step 29/30" in log[-1], log
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
    # bf16 methods cost half on a CPU with bf16 hardware (2x measured), full elsewhere
    prof = {"encoders": {"methods": ["dino", "dino_noise", "barlow", "simclr"],
                         "steps": {"dino": 8400, "dino_noise": 11200, "barlow": 2100, "simclr": 1400},
                         "per_method": {"dino": {"train": {"cpu_bf16": True}},
                                        "dino_noise": {"train": {"cpu_bf16": True}}}}}
    assert sorted(map(sorted, encoder_groups(prof, fast_bf16=True))) == [["barlow", "dino"], ["dino_noise", "simclr"]]
    assert sorted(map(sorted, encoder_groups(prof, fast_bf16=False))) == [["barlow", "dino", "simclr"], ["dino_noise"]]
    # the cost counts images: 4200 steps of 64 cost less than 1400 of 256 (x2 views each)
    prof = {"encoders": {"methods": ["simclr", "barlow", "dino"],
                         "steps": {"simclr": 1400, "barlow": 1400, "dino": 4200},
                         "per_method": {"dino": {"train": {"batch_size": 64}}}}}
    assert sorted(map(sorted, encoder_groups(prof, fast_bf16=False))) == [["barlow"], ["dino", "simclr"]]


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "scripts" / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_sweep_files_resolve_against_the_tiny_profile(path):
    """A typo in a sweep file (unknown key, method or loss option) fails here, not minutes into a GPU session."""
    import importlib.util

    from rcdm_lib.data.augment import AugmentConfig
    from rcdm_lib.encoders.tiny import TinyEncoderConfig

    spec = importlib.util.spec_from_file_location("sweep_encoders", REPO_ROOT / "scripts" / "sweep_encoders.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    variants = yaml.safe_load(path.read_text())
    assert isinstance(variants, list) and variants
    assert len({v["name"] for v in variants}) == len(variants), "variant names must be unique"
    prof = load_profile("tiny")
    for v in variants:
        c = sweep.variant_config(prof, v)  # resolved: unknown train or loss keys raise
        TinyEncoderConfig.from_dict({**c.model, "image_size": 32})
        AugmentConfig.from_dict(c.augment)


@pytest.mark.parametrize("method,loss,bad", [("dino", {"teacher_tmp": 0.1}, "teacher_tmp"),
                                             ("simclr", {"temp": 0.2}, "temp"),
                                             ("vicreg", {"sim_coef": 1.0}, "sim_coef")])
def test_unknown_loss_option_is_named(method, loss, bad):
    with pytest.raises(ValueError, match=f"unknown {method} loss option.*'{bad}'"):
        encoder_train_config(PROFILE, method, {"loss": loss}).resolved()
    ok = {"dino": {"teacher_temp": 0.1}, "simclr": {"temperature": 0.2}, "vicreg": {"sim_coeff": 1.0}}[method]
    encoder_train_config(PROFILE, method, {"loss": ok}).resolved()
