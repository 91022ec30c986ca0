"""Every chapter notebook executes under the smoke profile (a raising notebook fails the suite).

The smoke book is built once per session into a temporary folder (book sources copied,
models trained first when missing) and shared with tests/test_book_browser.py.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from rcdm_lib.config import REPO_ROOT
from rcdm_lib.pipeline import NOTEBOOK_DIR, notebook_sources

BOOK_SOURCES = ["_config.yml", "_toc.yml", "intro.md", "_static"]


def build_smoke_book(tmp_path_factory) -> Path:
    """Execute every notebook under `smoke` into a copy of the book sources, once per session: the first xdist
    worker to get here builds it, the others wait for it and share it (the smoke models: the smoke_models
    fixture)."""
    from filelock import FileLock

    from conftest import shared_dir
    from rcdm_lib.pipeline import run_notebooks, time_table

    root = shared_dir(tmp_path_factory) / "smoke-book"
    book, done = root / "book", root / "built"
    root.mkdir(exist_ok=True)
    with FileLock(str(root / "lock")):
        if done.is_file():
            return book
        shutil.rmtree(book, ignore_errors=True)   # a book a killed worker left half built
        book.mkdir()
        for name in BOOK_SOURCES:
            src = REPO_ROOT / "book" / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, book / name)
        t0 = time.perf_counter()
        runs = run_notebooks("smoke", book_dir=book, cache_dir=root / "cache", log=lambda s: None)
        print(f"\nsmoke notebooks executed in {time.perf_counter() - t0:.1f} s\n{time_table(runs)}")
        done.write_text("built")
    return book


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory, smoke_models) -> Path:
    return build_smoke_book(tmp_path_factory)


# chapters whose numbers the Claims page must show
FRACTIONS = {"01_conditional_samples", "02_out_of_distribution", "03_interpolation"}  # values in [0, 1]
RECORDING = FRACTIONS | {"04_fid_is", "05_rank_mrr", "06_neighbours_spread", "07_squared_distances",
                         "10_adversarial", "11_manipulation", "12_inversion_jacobians", "13_super_resolution",
                         "08_backbone_projector_augmentations", "15_icgan_distances"}
NOTEBOOKS = [p.stem for p in notebook_sources(notebook_dir=NOTEBOOK_DIR)]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_under_smoke(smoke_book, name):
    nb = json.loads((smoke_book / f"{name}.ipynb").read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    assert nb["metadata"]["papermill"]["parameters"]["profile"] == "smoke"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{name} shows no figure"
    # a page never shows where the checkout lies (the merged settings hold absolute paths)
    shown = json.dumps([c["source"] for c in nb["cells"]] + [
        {k: v for k, v in o.items() if k in ("text", "traceback")} |
        {k: v for k, v in o.get("data", {}).items() if k.startswith("text/")}
        for c in nb["cells"] for o in c.get("outputs", [])])
    assert str(REPO_ROOT) not in shown, f"{name} shows the absolute path of the repository"
    assert str(smoke_book) not in shown, f"{name} shows the absolute path of the book"
    assert nb["metadata"]["papermill"]["parameters"]["settings"].endswith(".settings.json")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_records_its_results(smoke_book, name):
    path = smoke_book / "_results" / f"{name}.json"
    if not path.is_file():
        assert name not in RECORDING, f"{name} recorded no result for the Claims page"
        pytest.skip(f"{name} records no result for the Claims page")
    res = json.loads(path.read_text())
    assert res["profile"] == "smoke" and res["results"], res
    if name in FRACTIONS:
        for r in res["results"]:
            assert 0.0 <= r["value"] <= 1.0, r


def test_claims_page_is_generated_from_results(smoke_book):
    from rcdm_lib.claims import CLAIMS

    page = (smoke_book / "claims.md").read_text()
    for name in sorted(RECORDING):
        res = json.loads((smoke_book / "_results" / f"{name}.json").read_text())
        for r in res["results"]:
            assert f"`{r['key']}`" in page and f"{r['value']:.3g}" in page
            assert CLAIMS[r["claim"]] in page
    assert "smoke" in page


@pytest.mark.parametrize("name", sorted(RECORDING))
def test_every_claim_measured_has_a_verdict_on_the_page(smoke_book, name):
    from rcdm_lib.claims import verdict_line

    res = json.loads((smoke_book / "_results" / f"{name}.json").read_text())
    verdicts = res.get("verdicts", [])
    missing = {r["claim"] for r in res["results"]} - {v["claim"] for v in verdicts}
    assert not missing, f"{name} recorded numbers for {sorted(missing)} but no verdict (claims.record_verdict)"
    page = (smoke_book / "claims.md").read_text()
    for v in verdicts:
        assert verdict_line(v, "smoke") in page, v


def test_interpolation_widget_state_is_embedded(smoke_book):
    nb = json.loads((smoke_book / "03_interpolation.ipynb").read_text())
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = {s["model_name"] for s in state.values()}
    assert {"IntSliderModel", "StackModel", "ImageModel", "LinkModel"} <= models, models
