"""The notebook pipeline: parameters, bad input, the cache key, failing cells, the Claims page."""
from __future__ import annotations

import json

import pytest
import torch

from rcdm_lib import claims, pipeline
from rcdm_lib.config import load_profile, load_settings, repo_path

GOOD = '''# %% tags=["parameters"]
x = 1
results_dir = "_results"
profile = "smoke"

# %%
from rcdm_lib import claims
claims.record(results_dir, "01_ok", "interpolation", "x", x / 10, "x over ten", profile=profile)
print("x is", x)
'''
RAISES = '''# %% tags=["parameters"]
x = 1

# %%
y = 2

# %%
raise RuntimeError("boom")
'''


def test_unknown_profile_says_which_exist():
    with pytest.raises(ValueError, match="unknown profile 'nope'.*smoke"):
        load_profile("nope")


def test_every_profile_has_parameters_for_the_first_chapters():
    for name in ("smoke", "tiny", "imagenet128"):
        settings = load_settings(name, check_files=False)   # imagenet128 names no data here
        nbs = settings["notebooks"]
        for nb in ("01_conditional_samples", "02_out_of_distribution", "03_interpolation"):
            params = pipeline.notebook_parameters(settings, nb, "/r")
            assert params["profile"] == name and params["results_dir"] == "/r"
            assert params["steps"] == nbs[nb]["steps"]


def test_notebook_without_parameters_cell_is_an_error(tmp_path):
    src = tmp_path / "01_bad.py"
    src.write_text("# %%\nx = 1\n")
    with pytest.raises(pipeline.NotebookError, match="no parameters cell.*tags=\\[\"parameters\"\\]"):
        pipeline.to_notebook(src)


def test_only_selects_by_number_or_name_and_rejects_unknown(tmp_path):
    for n in ("01_a", "02_b"):
        (tmp_path / f"{n}.py").write_text(GOOD)
    assert [p.stem for p in pipeline.notebook_sources("02", tmp_path)] == ["02_b"]
    assert [p.stem for p in pipeline.notebook_sources("01_a", tmp_path)] == ["01_a"]
    with pytest.raises(ValueError, match="no notebook '03'"):
        pipeline.notebook_sources("03", tmp_path)


def test_cache_key_depends_on_source_params_inputs_not_results_dir():
    base = pipeline.cache_key("src", {"a": 1, "results_dir": "/x"}, {"m": "h"}, "lib")
    assert base == pipeline.cache_key("src", {"a": 1, "results_dir": "/y"}, {"m": "h"}, "lib")
    assert base != pipeline.cache_key("src2", {"a": 1}, {"m": "h"}, "lib")
    assert base != pipeline.cache_key("src", {"a": 2}, {"m": "h"}, "lib")
    assert base != pipeline.cache_key("src", {"a": 1}, {"m": "h2"}, "lib")
    assert base != pipeline.cache_key("src", {"a": 1}, {"m": "h"}, "lib2")


def test_run_caches_and_writes_claims_page(tmp_path):
    nbdir, book = tmp_path / "nb", tmp_path / "book"
    nbdir.mkdir()
    (nbdir / "01_ok.py").write_text(GOOD)
    runs = pipeline.run_notebooks("smoke", book_dir=book, cache_dir=tmp_path / "c", notebook_dir=nbdir,
                                  log=lambda s: None)
    assert [r.cached for r in runs] == [False]
    nb = json.loads((book / "01_ok.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"]["papermill"]["parameters"]["profile"] == "smoke"
    again = pipeline.run_notebooks("smoke", book_dir=book, cache_dir=tmp_path / "c", notebook_dir=nbdir,
                                   log=lambda s: None)
    assert [r.cached for r in again] == [True]
    assert json.loads((book / "_results" / "01_ok.json").read_text())["results"][0]["value"] == 0.1
    page = (book / "claims.md").read_text()
    assert claims.CLAIMS["interpolation"] in page and "| 0.1 |" in page
    assert "01_ok" in pipeline.time_table(again)


def test_failing_cell_names_notebook_and_cell(tmp_path):
    src = tmp_path / "02_raises.py"
    src.write_text(RAISES)
    with pytest.raises(pipeline.NotebookError) as e:
        pipeline.execute_notebook(src, tmp_path / "out.ipynb", {"x": 2})
    msg = str(e.value)
    assert "02_raises.py" in msg and "cell" in msg and "RuntimeError: boom" in msg


def test_record_rejects_unknown_claims_and_non_finite(tmp_path):
    with pytest.raises(ValueError, match="unknown claim"):
        claims.record(tmp_path, "n", "nope", "k", 1.0, "d", profile="smoke")
    with pytest.raises(ValueError, match="finite"):
        claims.record(tmp_path, "n", "interpolation", "k", float("nan"), "d", profile="smoke")


def test_widget_slider_links_slider_to_stack():
    import numpy as np
    from rcdm_lib.widgets import image_slider

    frames = [np.full((4, 4, 3), v, np.uint8) for v in (0, 128, 255)]
    box = image_slider(frames, ["a", "b", "c"])
    slider = box.children[0].children[0]
    assert slider.max == 2 and len(box.children[1].children) == 3
    with pytest.raises(ValueError):
        image_slider(frames[:1], ["a"])


def test_an_rcdm_trained_on_other_encoder_files_is_named(tmp_path):
    """The slot RCDM records each slot's encoder sha256; a retrained encoder file is reported with its slots."""
    from safetensors.torch import save_file

    from rcdm_lib.artifacts import file_sha256

    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "dino.safetensors").write_bytes(b"dino v1")
    (enc / "simclr.safetensors").write_bytes(b"simclr")
    shas = {"dino_backbone": file_sha256(enc / "dino.safetensors"), "dino_head": file_sha256(enc / "dino.safetensors"),
            "simclr_backbone": file_sha256(enc / "simclr.safetensors")}
    rcdm = tmp_path / "rcdm.safetensors"
    save_file({"w": torch.zeros(1)}, str(rcdm), metadata={"data": json.dumps({"encoder_sha256": shas})})
    assert pipeline.rcdm_encoder_problems(rcdm, enc) == []
    (enc / "dino.safetensors").write_bytes(b"dino v2")
    (problem,) = pipeline.rcdm_encoder_problems(rcdm, enc)
    assert "dino.safetensors" in problem and "dino_backbone, dino_head" in problem


def test_the_shipped_rcdm_was_trained_on_the_shipped_encoders():
    prof = load_profile("tiny")
    assert pipeline.rcdm_encoder_problems(repo_path(prof["rcdm"]["export"]), repo_path(prof["encoders"]["dir"])) == []


def test_from_scratch_trains_the_rcdm_last_in_the_time_left(monkeypatch):
    """make book FROM_SCRATCH=1: upsampler, encoders within their share of what is left, IC-GAN, then the RCDM
    with --time-budget = what is left."""
    calls, clock = [], iter([0.0, 300.0, 1000.0, 5000.0])  # start, after the upsampler, before the RCDM, the end
    monkeypatch.setattr(pipeline.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(pipeline, "ensure_superres", lambda profile, from_scratch, log: calls.append("superres") or "sr")
    monkeypatch.setattr(pipeline, "_run_script", lambda script, *args, log: calls.append((script, *args)))
    monkeypatch.setattr(pipeline, "encoder_groups", lambda profile: [["dino", "barlow"], ["dino_noise"]])
    monkeypatch.setattr(pipeline, "ensure_icgan", lambda profile, from_scratch, log: calls.append("icgan") or "ic")
    logged = []
    done = pipeline.ensure_models("tiny", from_scratch=True, log=logged.append, budget_s=7200)
    enc = pipeline.ENCODER_SHARE * (7200 - 300 - pipeline.BUDGET_SLACK_S)
    left = 7200 - 1000 - pipeline.BUDGET_SLACK_S
    assert calls == ["superres",
                     ("train_encoder.py", ["--profile", "tiny", "--export", "--restart", "--method", "dino",
                                           "--method", "barlow", "--time-budget", f"{enc:.0f}"],
                      ["--profile", "tiny", "--export", "--restart", "--method", "dino_noise",
                       "--time-budget", f"{enc:.0f}"]),
                     "icgan",
                     ("train.py", ["--profile", "tiny", "--export", "--no-progress", "--time-budget", f"{left}"])]
    assert f"at most {enc:.0f} s for the encoders" in logged[0]
    assert f"{left} s left for the RCDM" in logged[1] and done.startswith("trained the tiny models in 5000 s")
    # the profile's budget by default; 0: the full recipes, no --time-budget
    assert load_profile("tiny")["models_budget_s"] == 7200
    calls.clear()
    clock = iter([0.0, 10.0])
    pipeline.ensure_models("tiny", from_scratch=True, log=logged.append, budget_s=0)
    assert "--time-budget" not in calls[1][1] and "--time-budget" not in calls[1][2]
    assert calls[-1] == ("train.py", ["--profile", "tiny", "--export", "--no-progress"])
