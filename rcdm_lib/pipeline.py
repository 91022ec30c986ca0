"""Notebook execution for the book: profile parameters in, executed notebooks and results out.

    from rcdm_lib.pipeline import run_notebooks
    runs = run_notebooks("smoke")        # notebooks/*.py -> book/*.ipynb, executed with papermill

Each notebook is a jupytext py:percent file with a cell tagged `parameters`. Papermill
injects the chapter's parameters (section `notebooks.<name>` of the merged settings, plus
`profile`, `results_dir` and `settings`, the merged settings file) after it. An executed
notebook is cached under a key made of the notebook source, its parameters, the merged
settings, the sha256 of its input model files and the source of `rcdm_lib`, so a rebuild
with nothing changed executes nothing. `make book` drives the
stages through scripts/run_notebooks.py: models, notebooks, JavaScript, `jupyter-book build`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rcdm_lib import claims
from rcdm_lib.config import REPO_ROOT, as_settings, repo_path, settings_hash, write_settings
from rcdm_lib.files import atomic_copy, atomic_write_text

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
BOOK_DIR = REPO_ROOT / "book"
CACHE_DIR = REPO_ROOT / ".cache" / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# npm packages vendored into the site so that it works offline; versions match myst-nb's defaults.
NPM_PACKAGES = {"requirejs": "2.3.7", "@jupyter-widgets/html-manager": "1.0.6", "mathjax": "3.2.2"}


class NotebookError(RuntimeError):
    """A notebook could not be prepared or one of its cells raised."""


@dataclass
class NotebookRun:
    name: str
    seconds: float      # execution time (of the cached run when cached)
    cached: bool
    path: Path



# --------------------------------------------------------------------------- notebooks

def notebook_sources(only: str | None = None, notebook_dir=NOTEBOOK_DIR) -> list[Path]:
    """The chapter sources notebooks/NN_*.py in order; `only` selects one by name or number."""
    srcs = sorted(Path(notebook_dir).glob("[0-9][0-9]_*.py"))
    if only is None:
        return srcs
    key = Path(only).stem
    picked = [s for s in srcs if s.stem == key or s.stem.split("_", 1)[0] == key]
    if not picked:
        raise ValueError(f"no notebook {only!r} in {notebook_dir}; expected one of {[s.stem for s in srcs]} "
                         "(a name or its two-digit number)")
    return picked


def to_notebook(src: Path):
    """jupytext py:percent -> nbformat notebook with a kernelspec; it must have a parameters cell."""
    import jupytext

    nb = jupytext.read(src, fmt="py:percent")
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells if c.cell_type == "code"):
        raise NotebookError(
            f"{src} has no parameters cell; papermill injects the profile's parameters after it. "
            "Mark the cell holding the default parameters with `# %% tags=[\"parameters\"]`."
        )
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    return nb


def notebook_parameters(profile, name: str, results_dir, settings_file: str | None = None) -> dict:
    """Papermill parameters of notebook `name` under `profile`; `settings_file`: the merged settings
    (write_settings) the chapter reads instead of the profile's own."""
    profile = as_settings(profile)
    params = dict((profile.get("notebooks") or {}).get(name) or {})
    params.update(profile=profile["profile"], results_dir=str(results_dir))
    if settings_file is not None:
        params["settings"] = settings_file
    return params


def input_files(profile) -> list[Path]:
    """The model files the notebooks of `profile` read (their hashes go into the cache key)."""
    profile = as_settings(profile)
    files = []
    r = profile.get("rcdm") or {}
    if r.get("export"):
        files.append(repo_path(r["export"]))
    enc = profile.get("encoders") or {}
    if enc.get("dir"):
        files += [repo_path(enc["dir"]) / f"{m}.safetensors" for m in enc.get("methods", [])]
    for w in (enc.get("weights") or {}).values():
        if w:
            files.append(repo_path(w))
    sr = profile.get("superres") or {}
    if sr.get("export") or sr.get("checkpoint"):   # chapter 13's upsampler: ours, or ADM's release
        files.append(repo_path(sr.get("export") or sr["checkpoint"]))
    ic = profile.get("icgan") or {}
    if ic.get("export") or ic.get("weights"):       # chapters 04 and 15's IC-GAN: ours, or the official file
        files.append(repo_path(ic.get("export") or ic["weights"]))
    named = [*((profile.get("rcdm") or {}).get("checkpoints") or {}).values(),   # one RCDM per representation
             (profile.get("metrics") or {}).get("inception_weights"),
             (profile.get("unconditional") or {}).get("checkpoint")]
    return files + [repo_path(f) for f in named if f]


def beside_files(profile) -> list[Path]:
    """The files of the models shown beside the run's own, also in the cache key: rcdm.beside's checkpoints and
    encoders, the weights of encoders.custom. Never trained by the pipeline (input_files are): a missing one is
    named by the settings check or when the run opens."""
    profile = as_settings(profile)
    enc = profile.get("encoders") or {}
    files = []
    for b in ((profile.get("rcdm") or {}).get("beside") or {}).values():
        files += [b.get("checkpoint"), (enc.get("weights") or {}).get(b["encoder"])
                  or (Path(enc["dir"]) / f"{b['encoder']}.safetensors" if enc.get("dir") else None)]
    files += [c.get("weights") for c in (enc.get("custom") or {}).values() if c.get("weights") != "none"]
    return [repo_path(f) for f in files if f]


def _shown(path: Path) -> str:
    """A path as a page or a cache key may show it: relative to the repository when inside it."""
    path = Path(path)
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _sha256(path: Path) -> str:
    from rcdm_lib.artifacts import file_sha256

    return file_sha256(path) if path.is_file() else "missing"


def library_hash() -> str:
    h = hashlib.sha256()
    for p in sorted((REPO_ROOT / "rcdm_lib").rglob("*.py")):
        h.update(str(p.relative_to(REPO_ROOT)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def cache_key(source: str, params: dict, inputs: dict[str, str], lib: str, settings: str = "") -> str:
    # results_dir is where results go, not what they are, and the settings file is keyed by its contents'
    # hash (`settings`, which does not depend on where the repository lies): both stay out of the key.
    p = {k: v for k, v in params.items() if k not in ("results_dir", "settings")}
    blob = json.dumps({"source": source, "params": p, "inputs": inputs, "lib": lib, "settings": settings},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


PATH_PARAMETERS = ("results_dir", "settings")   # shown on a page by their last component


def execute_notebook(src: Path, out: Path, params: dict, cwd=REPO_ROOT) -> float:
    """Execute one notebook with papermill; a raising cell becomes a NotebookError naming it."""
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    nb = to_notebook(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    # papermill writes its output as it goes: into a partial file, renamed to `out` only when every cell ran, so a
    # failure or a kill never leaves a half-run chapter where the book would publish it
    partial = out.parent / f".{out.stem}.partial.ipynb"   # not in the toc: never built (only_build_toc_files)
    with tempfile.TemporaryDirectory() as tmp:
        ipynb = Path(tmp) / f"{src.stem}.ipynb"
        nbformat.write(nb, ipynb)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(ipynb), str(partial), parameters=params, kernel_name=KERNELSPEC["name"],
                                cwd=str(cwd), progress_bar=False, log_output=False)
        except PapermillExecutionError as e:
            first = (e.source or "").strip().splitlines()[:1]
            failed = out.parent / f"{out.stem}.failed.ipynb"
            os.replace(partial, failed)
            raise NotebookError(
                f"notebook {src.name} failed in cell {e.cell_index} (execution count {e.exec_count}; "
                f"the injected parameters cell counts): {e.ename}: {e.evalue}\n"
                f"  cell starts with: {first[0] if first else ''}\n  the partly executed notebook is {failed} "
                "(not part of the book)"
            ) from None
        seconds = time.perf_counter() - t0
    # The book shows the parameters papermill injected (the values used), not the defaults; the paths among them
    # by their names only (where the book and the settings file lie is no business of the page).
    done = nbformat.read(partial, as_version=4)
    for cell in done.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        if "injected-parameters" in tags:
            cell.source = "\n".join(_shown_parameter(line, params) for line in cell.source.splitlines())
    nbformat.write(done, partial)
    os.replace(partial, out)
    return seconds


def _shown_parameter(line: str, params: dict) -> str:
    """A line `name = value` of papermill's injected cell as a page shows it: a path parameter by its last part."""
    name = line.split(" = ", 1)[0]
    if name in PATH_PARAMETERS and params.get(name):
        return f"{name} = {json.dumps(Path(params[name]).name)}"
    return line


def _cache_entry(nb_path: Path, meta_path: Path, log) -> dict | None:
    """The record of a cached chapter when the notebook and its record are both whole, else None (a cut-short entry
    is named and executed again)."""
    import nbformat

    if not (nb_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        nbformat.read(nb_path, as_version=4)
        if not isinstance(meta, dict) or not isinstance(meta.get("seconds"), (int, float)):
            raise ValueError("its record has no execution time")
    except Exception as e:  # noqa: BLE001 - any unreadable entry is executed again
        log(f"  cache entry {nb_path.name} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
            "executing again")
        return None
    return meta


def run_notebooks(profile, only: str | None = None, book_dir=BOOK_DIR, cache_dir=None, force: bool = False,
                  notebook_dir=NOTEBOOK_DIR, log=print) -> list[NotebookRun]:
    """Execute (or take from the cache) the chapter notebooks of `profile` into `book_dir`,
    and regenerate the Claims page from all results in `book_dir/_results`."""
    profile = as_settings(profile)
    book_dir = Path(book_dir)
    cache_dir = Path(cache_dir) if cache_dir else CACHE_DIR / profile["profile"]
    results_dir = book_dir / "_results"
    srcs = notebook_sources(only, notebook_dir)
    for src in srcs:          # every source is checked before anything runs
        to_notebook(src)
    inputs = {_shown(p): _sha256(p) for p in [*input_files(profile), *beside_files(profile)]}
    lib = library_hash()
    # the chapters read the merged settings (profile and overlay) from one file; they run in the repository and
    # get paths relative to it, and a page shows path parameters by name only (_shown_parameter)
    written = write_settings(profile, repo_path(profile.get("cache_dir") or ".cache") / "settings")
    settings_file = os.path.relpath(written, REPO_ROOT)
    settings_key = settings_hash(profile)
    runs = []
    for src in srcs:
        name = src.stem
        params = notebook_parameters(profile, name, os.path.relpath(results_dir, REPO_ROOT), settings_file)
        key = cache_key(src.read_text(), params, inputs, lib, settings_key)
        cached_nb, cached_res = cache_dir / f"{name}-{key}.ipynb", cache_dir / f"{name}-{key}.json"
        out = book_dir / f"{name}.ipynb"
        claims.clear(results_dir, name)
        meta = None if force else _cache_entry(cached_nb, cached_res, log)
        if meta is not None:
            book_dir.mkdir(parents=True, exist_ok=True)
            atomic_copy(cached_nb, out)
            if meta.get("results") is not None:
                results_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_text(claims.results_path(results_dir, name),
                                  json.dumps(meta["results"], indent=2) + "\n")
            runs.append(NotebookRun(name, meta["seconds"], True, out))
            log(f"  {name}: cached ({meta['seconds']:.1f} s when executed)")
            continue
        log(f"  {name}: executing under profile {profile['profile']!r} ...")
        out.unlink(missing_ok=True)     # the book holds a chapter only once it has run to its end
        seconds = execute_notebook(src, out, params)
        res_path = claims.results_path(results_dir, name)
        results = json.loads(res_path.read_text()) if res_path.is_file() else None
        cache_dir.mkdir(parents=True, exist_ok=True)
        for old in cache_dir.glob(f"{name}-*"):
            old.unlink()
        # the notebook first, its record last: an entry counts only when both are whole (_cache_entry)
        atomic_copy(out, cached_nb)
        atomic_write_text(cached_res, json.dumps({"seconds": seconds, "results": results}) + "\n")
        runs.append(NotebookRun(name, seconds, False, out))
        log(f"  {name}: done in {seconds:.1f} s")
    claims.write_claims_page(results_dir, book_dir / "claims.md")
    return runs


def time_table(runs: list[NotebookRun]) -> str:
    rows = ["| notebook | seconds | from cache |", "| --- | ---: | --- |"]
    rows += [f"| {r.name} | {r.seconds:.1f} | {'yes' if r.cached else 'no'} |" for r in runs]
    rows.append(f"| total | {sum(r.seconds for r in runs if not r.cached):.1f} (executed now) | |")
    return "\n".join(rows)


# --------------------------------------------------------------------------- models

def _manifest_problems(manifest: Path) -> list[str]:
    from rcdm_lib.artifacts import verify_manifest

    return verify_manifest(manifest)  # manifests name their files relative to their own folder


def rcdm_encoder_problems(rcdm: Path, enc_dir: Path) -> list[str]:
    """The encoders whose file in `enc_dir` is not the one the slot RCDM `rcdm` was trained on (its metadata
    records each slot's encoder sha256): a retrained encoder needs a retrained (warm-started) RCDM."""
    from rcdm_lib.artifacts import file_sha256
    from rcdm_lib.unet import read_unet_extra

    data = read_unet_extra(rcdm, "data") or {}
    by_method: dict[str, dict[str, str]] = {}  # method -> {slot: the sha256 it was trained on}
    for slot, sha in (data.get("encoder_sha256") or {}).items():
        by_method.setdefault(slot.rsplit("_", 1)[0], {})[slot] = sha  # <method>_<backbone|head>
    problems = []
    for method, slots in by_method.items():
        path = enc_dir / f"{method}.safetensors"
        if path.is_file():
            now = file_sha256(path)  # once per file, for both of its slots
            stale = [slot for slot, sha in slots.items() if sha != now]
            if stale:
                problems.append(f"{path} is not the file {rcdm.name} was trained on (slots {', '.join(stale)})")
    return problems


def ensure_models(profile, from_scratch: bool = False, log=print, budget_s: float | None = None) -> str:
    """Reuse the profile's trained models (hashes checked against the manifests) or train
    them with scripts/train_encoder.py and scripts/train.py (the upsampler of chapter 13:
    ensure_superres). Returns what was done.

    Training keeps to `budget_s` seconds (default: the profile's `models_budget_s`; 0 or None:
    no budget): the upsampler trains its full recipe (a few minutes); the encoders get at most
    ENCODER_SHARE of the time left (scripts/train_encoder.py --time-budget: their full recipes when
    they fit, all shortened by one factor on a slow machine); the IC-GAN trains its full recipe;
    the RCDM, last, trains what fits in the time left (scripts/train.py --time-budget)."""
    t0 = time.perf_counter()
    profile = as_settings(profile)
    if budget_s is None:
        budget_s = profile.get("models_budget_s")
    name = profile["profile"]
    if not (profile.get("rcdm") or {}).get("export"):   # the paper's setting: the files the settings name
        return f"{name}: using the files the settings name (checked when they were loaded)"
    superres = ensure_superres(profile, from_scratch=from_scratch, log=log)
    enc_dir = repo_path(profile["encoders"]["dir"])
    rcdm = repo_path(profile["rcdm"]["export"])
    icgan = repo_path(profile["icgan"]["export"]) if (profile.get("icgan") or {}).get("export") else None
    # IC-GAN is trained on the encoders' features, after them (ensure_icgan)
    missing = [f"{p} is missing" for p in input_files(profile) if not p.is_file() and p != icgan]
    if not from_scratch and not missing:
        problems = []
        for manifest in (enc_dir / "manifest.json", rcdm.parent / "manifest.json"):
            if manifest.is_file():
                problems += _manifest_problems(manifest)
            elif name != "smoke":
                problems.append(f"{manifest} is missing")
        if problems:
            raise NotebookError(
                f"the {name} models do not match their manifests:\n  - " + "\n  - ".join(problems)
                + "\nRestore the shipped files (git checkout artifacts/) or retrain them with "
                  "`make book FROM_SCRATCH=1`.")
        stale = rcdm_encoder_problems(rcdm, enc_dir)  # files that match their manifests, but not each other
        if stale:
            raise NotebookError(
                f"the {name} RCDM was trained on other encoders than {enc_dir} holds:\n  - " + "\n  - ".join(stale)
                + f"\nWarm-start it on them (`python scripts/train.py --profile {name} --init-from {rcdm}`, see the "
                  "README) or retrain every model with `make book FROM_SCRATCH=1`.")
        return f"reused the {name} models (hashes match the manifests); {superres}; {ensure_icgan(profile, log=log)}"
    if missing and not from_scratch:
        log(f"  missing: {', '.join(str(m) for m in missing)}; training them")
    enc_budget = None
    if budget_s:
        enc_budget = ENCODER_SHARE * (budget_s - (time.perf_counter() - t0) - BUDGET_SLACK_S)
        log(f"  time budget {budget_s:.0f} s: at most {enc_budget:.0f} s for the encoders")
    _train_encoders(profile, log, budget_s=enc_budget)
    icgan_done = ensure_icgan(profile, from_scratch=from_scratch, log=log)  # needs the encoders only
    # --resume continues a run that a kill interrupted (or starts one); from scratch, a run folder with checkpoints
    # is an error that names it
    rcdm_args = [*settings_args(profile), "--export", "--no-progress", *([] if from_scratch else ["--resume"])]
    if budget_s:
        left = budget_s - (time.perf_counter() - t0) - BUDGET_SLACK_S
        log(f"  time budget {budget_s:.0f} s: {left:.0f} s left for the RCDM")
        rcdm_args += ["--time-budget", f"{left:.0f}"]
    _run_script("train.py", rcdm_args, log=log)
    return f"trained the {name} models in {time.perf_counter() - t0:.0f} s; {superres}; {icgan_done}"


BUDGET_SLACK_S = 60  # of a models budget, kept for what follows the RCDM's training (its export, the checks)
# of the time left after the upsampler, the most the encoders may take: their full recipes take about 41% of it
# at the CPU speed of 2026-11-26 (encoders about 2800 s, IC-GAN 474, RCDM 3300; benchmarks/
# cpu_2026-11-27_from_scratch.md), so they are not shortened on such a day, and the IC-GAN and the RCDM keep
# the rest on a slower one
ENCODER_SHARE = 0.45


def encoder_groups(profile: dict, n: int = 2, fast_bf16: bool | None = None) -> list[list[str]]:
    """The profile's encoder methods split into `n` groups of about equal training cost: steps x batch x
    views, halved for methods trained in bf16 (cpu_bf16) when this CPU has bf16 hardware (`fast_bf16`)."""
    from rcdm_lib.encoders.training import encoder_train_config
    from rcdm_lib.precision import cpu_has_fast_bf16

    fast_bf16 = cpu_has_fast_bf16() if fast_bf16 is None else fast_bf16
    ecfg = profile.get("encoders") or {}
    cost = {}
    for m in ecfg.get("methods") or []:
        c = encoder_train_config(profile, m)
        cost[m] = c.steps * c.batch_size * (1 if m == "supervised" else 2) / (2 if c.cpu_bf16 and fast_bf16 else 1)
    groups: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for m in sorted(cost, key=lambda m: -cost[m]):  # longest first, each to the least loaded group
        i = load.index(min(load))
        groups[i].append(m)
        load[i] += cost[m]
    return [g for g in groups if g]


def _train_encoders(profile: dict, log, budget_s: float | None = None) -> None:
    """scripts/train_encoder.py as two one-thread processes at once (the two cores of the CPU budget), each
    within `budget_s` seconds when given (--time-budget)."""
    budget = ["--time-budget", f"{budget_s:.0f}"] if budget_s else []
    _run_script("train_encoder.py", *[[*settings_args(profile), "--export", "--restart",
                                       *[a for m in g for a in ("--method", m)],
                                       *budget] for g in encoder_groups(profile)], log=log)


def settings_args(profile: dict) -> list[str]:
    """The options that give a script the same settings: --profile, and --config when there is an overlay."""
    return ["--profile", profile["profile"], *(["--config", profile["overlay"]] if profile.get("overlay") else [])]


def _run_script(script: str, *arg_lists: list[str], log) -> None:
    """Run scripts/<script> from the repository root once per argument list, the runs at once,
    logging each command and the time they took; a failed run raises CalledProcessError."""
    cmds = [[sys.executable, str(REPO_ROOT / "scripts" / script), *args] for args in arg_lists]
    for cmd in cmds:
        log(f"  $ {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    procs = [subprocess.Popen(cmd, cwd=REPO_ROOT, env=env) for cmd in cmds]
    codes = [p.wait() for p in procs]
    for cmd, code in zip(cmds, codes):
        if code:
            raise subprocess.CalledProcessError(code, cmd)
    log(f"  {script}{f' ({len(cmds)} processes)' if len(cmds) > 1 else ''}: {time.perf_counter() - t0:.0f} s")


def _check_manifest(path: Path, profile_name: str, what: str, script: str) -> None:
    """Raise when `path` does not match the manifest beside it (smoke models may have none)."""
    manifest = path.parent / "manifest.json"
    problems = (_manifest_problems(manifest) if manifest.is_file()
                else [] if profile_name == "smoke" else [f"{manifest} is missing"])
    if problems:
        raise NotebookError(
            f"the {profile_name} {what} does not match its manifest:\n  - " + "\n  - ".join(problems)
            + "\nRestore the shipped files (git checkout artifacts/) or retrain it with "
              f"`python scripts/{script} --profile {profile_name}`.")


def ensure_icgan(profile, from_scratch: bool = False, log=print) -> str:
    """Reuse the profile's IC-GAN (hash checked against its manifest, trained on the current
    encoder) or train it with scripts/train_icgan.py. Returns what was done."""
    from rcdm_lib.artifacts import file_sha256
    from rcdm_lib.icgan import read_icgan_metadata

    profile = as_settings(profile)
    name = profile["profile"]
    ic = profile.get("icgan") or {}
    if not ic.get("export"):
        return "no IC-GAN to train (icgan.export is not set)"
    path = repo_path(ic["export"])
    args = [*settings_args(profile), "--export", "--no-progress"]
    if path.is_file() and not from_scratch:
        _check_manifest(path, name, "IC-GAN", "train_icgan.py")
        trained_on = (read_icgan_metadata(path).get("data") or {}).get("encoder_sha256")
        enc_file = repo_path(profile["encoders"]["dir"]) / f"{ic['slot'].rsplit('_', 1)[0]}.safetensors"
        if not enc_file.is_file() or trained_on == file_sha256(enc_file):
            return "reused the IC-GAN (hash matches its manifest)"
        log(f"  {path} was trained on another {enc_file.name}; retraining it")
        args.append("--restart")
    elif not from_scratch:
        args.append("--resume")   # continues an interrupted run (or starts one)
    _run_script("train_icgan.py", args, log=log)
    return "trained the IC-GAN"


def ensure_superres(profile, from_scratch: bool = False, log=print) -> str:
    """Reuse the profile's super-resolution model (chapter 13; hash checked against its manifest)
    or train it with scripts/train_superres.py when it is missing. Returns what was done."""
    profile = as_settings(profile)
    name = profile["profile"]
    sr = profile.get("superres") or {}
    if not sr.get("export"):
        return "no super-resolution model to train (superres.export is not set)"
    path = repo_path(sr["export"])
    if path.is_file() and not from_scratch:
        _check_manifest(path, name, "super-resolution model", "train_superres.py")
        return "reused the super-resolution model (hash matches its manifest)"
    # --resume continues an interrupted run (or starts one); from scratch, a run folder with
    # checkpoints is an error that names it, as for scripts/train.py
    _run_script("train_superres.py", [*settings_args(profile), "--export", "--no-progress"] + ([] if from_scratch else ["--resume"]),
                log=log)
    return "trained the super-resolution model"


# --------------------------------------------------------------------------- the site

def vendor_js(dest=None, log=print) -> bool:
    """Fetch the widget and MathJax JavaScript from npm into `dest` (default: the folder
    rcdm_lib.widgets serves). False, with a message, when npm is not available."""
    from rcdm_lib import widgets

    dest = Path(dest) if dest else widgets.vendor_root()
    if all((dest / f).is_file() for f in (widgets.REQUIRE_JS, widgets.EMBED_AMD_JS, widgets.MATHJAX_JS)):
        return True
    npm = shutil.which("npm")
    if npm is None:
        log("  npm not found: the site will load widget and MathJax JavaScript from the public CDN")
        return False
    tarballs = dest / "tarballs"
    tarballs.mkdir(parents=True, exist_ok=True)
    specs = [f"{p}@{v}" for p, v in NPM_PACKAGES.items()]
    try:
        subprocess.run([npm, "pack", "--silent", *specs], cwd=tarballs, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        log(f"  npm pack failed ({e.stderr.strip()[-300:]}); using the public CDN")
        return False
    # (package, folder inside the tarball, destination folder)
    layout = [("requirejs", "package/require.js", "static/vendor/requirejs"),
              ("jupyter-widgets-html-manager", "package/dist/", "extra/@jupyter-widgets/html-manager/dist"),
              ("mathjax", "package/es5/", "static/vendor/mathjax")]
    for prefix, inner, target in layout:
        (tgz,) = tarballs.glob(f"{prefix}-[0-9]*.tgz")
        out = dest / target
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        with tarfile.open(tgz) as tf:
            for m in tf.getmembers():
                if not m.isfile() or not m.name.startswith(inner) or m.name.endswith(".map"):
                    continue
                rel = Path(m.name).name if not inner.endswith("/") else m.name[len(inner):]
                f = (out / rel).resolve()
                if not f.is_relative_to(out.resolve()):
                    raise NotebookError(f"{tgz.name} holds the member {m.name!r}, which would be written outside "
                                        f"{out}; refusing the archive (vendor the JavaScript by hand or use the CDN)")
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(tf.extractfile(m).read())
    # The bundle's public path is the folder of whichever widget module RequireJS resolved
    # first (@jupyter-widgets/controls or .../html-manager/dist/...): its fonts and chunks
    # must be found under both.
    dist = dest / "extra" / "@jupyter-widgets" / "html-manager" / "dist"
    for f in dist.iterdir():
        if f.suffix in (".woff", ".woff2", ".ttf", ".eot", ".svg") or f.name.endswith(".embed.js"):
            shutil.copyfile(f, dist.parent.parent / f.name)
    log(f"  vendored {', '.join(specs)} from npm into {dest}")
    return True


def build_book(book_dir=BOOK_DIR, title: str | None = None, log=print) -> Path:
    """`jupyter-book build` (execution off, as book/_config.yml says); returns index.html."""
    book_dir = Path(book_dir)
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(book_dir)]
    env = dict(os.environ)
    if title:
        env["RCDM_BOOK_TITLE"] = title
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NotebookError(f"jupyter-book build {book_dir} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    warnings = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "WARNING" in ln]
    for ln in warnings[:20]:
        log(f"  {ln}")
    index = book_dir / "_build" / "html" / "index.html"
    if not index.is_file():
        raise NotebookError(f"jupyter-book build finished but {index} does not exist")
    return index
