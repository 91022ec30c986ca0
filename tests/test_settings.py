"""Settings: a profile with a user's --config overlay, merged, resolved and checked before any work."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rcdm_lib import pipeline
from rcdm_lib.config import REPO_ROOT, as_settings, load_settings, settings_hash, write_settings
from rcdm_lib.settings import SettingsError, chapter_parameters

SCRIPTS = REPO_ROOT / "scripts"


def overlay(tmp_path: Path, body: dict, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body))
    return path


def imagenet_root(tmp_path: Path, splits=("train", "val")) -> Path:
    root = tmp_path / "imagenet"
    for s in splits:
        (root / s / "n01").mkdir(parents=True)
    return root


def problems_of(profile: str, body: dict, tmp_path: Path) -> str:
    with pytest.raises(SettingsError) as e:
        load_settings(profile, overlay(tmp_path, body))
    return str(e.value)


def test_overlay_is_merged_over_the_profile_with_its_paths_relative_to_its_folder(tmp_path):
    (tmp_path / "cfg").mkdir()
    root = imagenet_root(tmp_path)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "dino.pth").write_bytes(b"x")
    path = overlay(tmp_path / "cfg", {"data": {"root": "../imagenet"}, "encoders": {"weights": {"dino": "../w/dino.pth"}},
                                       "notebooks": {"01_conditional_samples": {"n_images": 2}}})
    s = load_settings("imagenet128", path)
    assert s["data"]["root"] == str(root) and s["encoders"]["weights"]["dino"] == str(tmp_path / "w" / "dino.pth")
    assert s["data"]["image_size"] == 128                      # kept from the profile beside the overlay's root
    nb = s["notebooks"]["01_conditional_samples"]
    assert nb["n_images"] == 2 and nb["steps"] == 100          # deep merge: the profile's other parameters stay
    assert s["rcdm"]["out"] == str(REPO_ROOT / "runs/imagenet128/rcdm")   # the profile's paths: against the repository
    assert s["profile"] == "imagenet128" and s["overlay"] == str(path)


def test_a_relative_override_is_taken_from_the_working_directory(tmp_path, monkeypatch):
    imagenet_root(tmp_path)
    monkeypatch.chdir(tmp_path)
    s = load_settings("imagenet128", overrides={"data": {"root": "imagenet"}})
    assert s["data"]["root"] == str(tmp_path / "imagenet")


def test_an_unknown_key_is_named_with_the_nearest_valid_key(tmp_path):
    msg = problems_of("tiny", {"rcdm": {"train": {"p_nul": 0.5}}}, tmp_path)
    assert "rcdm.train.p_nul is not a setting; did you mean rcdm.train.p_null?" in msg
    msg = problems_of("tiny", {"encoder": {"dir": "x"}}, tmp_path)
    assert "encoder is not a setting; did you mean encoders?" in msg
    msg = problems_of("tiny", {"rcdm": {"checkpoints": {"dino_trunk": "f.pt"}}}, tmp_path)
    assert "rcdm.checkpoints.dino_trunk is not a setting" in msg and "dino_head" in msg
    assert "mine.yaml" in msg                                   # which file said it


def test_wrong_types_name_the_key_the_value_and_what_is_allowed(tmp_path):
    msg = problems_of("tiny", {"rcdm": {"train": {"lr": "5e-4", "steps": "ten"}, "unet": {"num_res_blocks": 1.5}},
                               "seed": True, "notebooks": {"05_rank_mrr": {"pool_size": "many"}}}, tmp_path)
    assert "rcdm.train.lr is '5e-4'; expected a number (YAML 1.1 reads" in msg
    assert "rcdm.train.steps is 'ten'; expected an integer" in msg
    assert "rcdm.unet.num_res_blocks is 1.5; expected an integer" in msg
    assert "seed is True; expected an integer" in msg
    assert "notebooks.05_rank_mrr.pool_size is 'many'; expected an integer" in msg


def test_a_missing_file_and_a_folder_without_val_are_named_by_their_key(tmp_path):
    root = imagenet_root(tmp_path, splits=("train",))
    msg = problems_of("imagenet128", {"data": {"root": str(root)}, "rcdm": {"checkpoints": {"dino_backbone": "no.pt"}},
                                      "metrics": {"inception_weights": str(tmp_path)}}, tmp_path)
    assert f"data.root {root} has no val/" in msg
    assert f"rcdm.checkpoints.dino_backbone names {tmp_path / 'no.pt'}, which is not a file" in msg
    assert "metrics.inception_weights names" in msg and "(it is a folder)" in msg
    msg = problems_of("imagenet128", {}, tmp_path)
    assert "data.root is not set" in msg


def test_chapter_parameters_are_checked_against_the_chapters_parameters_cell(tmp_path):
    params = chapter_parameters(REPO_ROOT / "notebooks" / "01_conditional_samples.py")
    assert params["n_images"] == 3 and params["settings"] is None
    msg = problems_of("tiny", {"notebooks": {"01_conditional_samples": {"n_imags": 2}}}, tmp_path)
    assert "notebooks.01_conditional_samples.n_imags is not a setting; did you mean " \
           "notebooks.01_conditional_samples.n_images?" in msg
    msg = problems_of("tiny", {"notebooks": {"01_conditional_sample": {"n_images": 2}}}, tmp_path)
    assert "did you mean notebooks.01_conditional_samples?" in msg


def test_keys_the_loader_sets_cannot_come_from_a_file(tmp_path):
    assert "profile is set by the loader" in problems_of("tiny", {"profile": "smoke"}, tmp_path)


def test_every_profile_is_valid_as_shipped():
    for name in ("smoke", "tiny"):
        assert load_settings(name)["profile"] == name
    load_settings("imagenet128", check_files=False)             # its data are the user's


def test_settings_file_round_trip_and_hash_independent_of_the_checkout(tmp_path):
    s = load_settings("smoke")
    f = write_settings(s, tmp_path)
    assert write_settings(s, tmp_path) == f and len(list(tmp_path.iterdir())) == 1   # same settings, same file
    assert as_settings(f) == s
    moved = json.loads(json.dumps(s).replace(str(REPO_ROOT), "/elsewhere/clone"))
    assert settings_hash(s) != settings_hash(moved)
    assert settings_hash(s) == settings_hash(json.loads(json.dumps(s)))
    other = dict(s, seed=1)
    assert settings_hash(other) != settings_hash(s)


GOOD = '''# %% tags=["parameters"]
profile = "smoke"
settings = None
results_dir = "_results"

# %%
from rcdm_lib.config import as_settings
s = as_settings(settings or profile)
print("title:", s["book"]["title"], "n_images:", s["notebooks"]["01_conditional_samples"]["n_images"])
'''


def test_the_chapters_read_the_merged_settings_and_an_overlay_changes_the_cache_key(tmp_path):
    nbdir, book = tmp_path / "nb", tmp_path / "book"
    nbdir.mkdir()
    (nbdir / "01_reads.py").write_text(GOOD)
    cfg = overlay(tmp_path, {"book": {"title": "my run"}, "notebooks": {"01_conditional_samples": {"n_images": 2}}})

    def run(settings):
        runs = pipeline.run_notebooks(settings, book_dir=book, cache_dir=tmp_path / "c", notebook_dir=nbdir,
                                      log=lambda s: None)
        nb = json.loads((book / "01_reads.ipynb").read_text())
        text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
        return runs[0].cached, text, nb

    cached, text, nb = run(load_settings("smoke", cfg))
    assert not cached and "title: my run n_images: 2" in text
    shown = nb["metadata"]["papermill"]["parameters"]["settings"]
    assert not Path(shown).is_absolute() and shown.endswith(".settings.json")   # pages never show the checkout
    assert run(load_settings("smoke", cfg))[0]                   # the same settings: cached
    cached, text, _ = run(load_settings("smoke"))
    assert not cached and "n_images: 3" in text                  # without the overlay: executed again


def test_every_script_that_reads_a_profile_takes_config():
    for script in sorted(SCRIPTS.glob("*.py")):
        out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
        if "--profile" in out.stdout:
            assert "--config" in out.stdout, f"{script.name} takes --profile but not --config"


def test_scripts_stop_on_bad_settings_before_any_work(tmp_path):
    cfg = overlay(tmp_path, {"rcdm": {"train": {"p_nul": 0.5}}})
    for script in ("train.py", "run_notebooks.py", "evaluate.py", "train_encoder.py"):
        r = subprocess.run([sys.executable, str(SCRIPTS / script), "--profile", "smoke", "--config", str(cfg)],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert r.returncode != 0 and "did you mean rcdm.train.p_null?" in r.stderr, (script, r.stderr[-500:])
        assert "Traceback" not in r.stderr, script


def test_make_book_passes_config_to_the_pipeline(tmp_path):
    cfg = overlay(tmp_path, {})
    out = subprocess.run(["make", "-n", "book", "PROFILE=smoke", f"CONFIG={cfg}"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert f"--profile smoke --config {cfg} --models --build" in " ".join(out.replace("\\\n", " ").split())


def test_the_loss_section_holds_exactly_the_options_the_methods_read():
    """encoders.per_method.<m>.loss is checked against EncoderLoss: it must hold every option some method reads
    (else a valid setting is refused) and no other (else a typo passes the check)."""
    import dataclasses

    from rcdm_lib.encoders.tiny import METHODS
    from rcdm_lib.encoders.training import EncoderLoss, _loss_options

    read = set().union(*(_loss_options(m) for m in METHODS))
    assert {f.name for f in dataclasses.fields(EncoderLoss)} == read
    with pytest.raises(SettingsError, match=r"encoders\.per_method\.simclr\.loss\.temprature is not a setting; "
                                            r"did you mean encoders\.per_method\.simclr\.loss\.temperature\?"):
        load_settings("tiny", overrides={"encoders": {"per_method": {"simclr": {"loss": {"temprature": 0.1}}}}},
                      check_files=False)
    with pytest.raises(SettingsError, match=r"encoders\.methods\[1\] is 'dinno'; expected one of"):
        load_settings("tiny", overrides={"encoders": {"methods": ["dino", "dinno"]}}, check_files=False)


def test_an_overlay_that_sets_a_needed_value_to_null_is_named_but_a_path_may_be_switched_off(tmp_path):
    """Overlays cannot delete a key; a null over a size the profile sets would fail inside the work (a TypeError
    in the UNet's constructor); over a path it switches the file off (e.g. our upsampler for the released one)."""
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("rcdm:\n  image_size: null\nsuperres:\n  export: null\n")
    with pytest.raises(SettingsError) as e:
        load_settings("smoke", overlay, check_files=False)
    assert f"--config {overlay}: rcdm.image_size is null, but the profile sets it (8)" in str(e.value)
    assert "superres.export" not in str(e.value)
