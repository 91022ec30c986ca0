"""Run settings: the profiles of `_config.yml` at the repository root and a user's overlay.

A profile is `defaults` deep-merged with `profiles[name]`; `--config FILE` deep-merges a user's
YAML over it (`load_settings`). What a key may hold is `rcdm_lib.settings`. Library code takes
plain arguments; only scripts and notebooks read settings.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from rcdm_lib.files import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "_config.yml"
NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def repo_path(p) -> Path:
    """A path from a profile or an option: absolute as given, relative to the repository root."""
    p = Path(p)
    return p if p.is_absolute() else REPO_ROOT / p


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# libyaml's safe loader when PyYAML was built with it (ten times faster, the same objects), else the pure-Python one
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_config(path: str | Path | None = None) -> dict:
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"profile file {path} not found; expected the repository's _config.yml")
    with open(path) as f:
        cfg = yaml.load(f, Loader=SAFE_LOADER) or {}
    if "profiles" not in cfg or not isinstance(cfg["profiles"], dict):
        raise ValueError(f"{path} has no 'profiles' mapping; expected keys 'defaults' and 'profiles'")
    return cfg


def profile_names(path: str | Path | None = None) -> list[str]:
    return list(read_config(path)["profiles"])


def load_profile(name: str, path: str | Path | None = None) -> dict[str, Any]:
    """The checked settings of profile `name` without an overlay (see `load_settings`)."""
    return load_settings(name, path=path)


def load_settings(profile: str, overlay: str | Path | None = None, overrides: dict | None = None,
                  path: str | Path | None = None, check_files: bool = True) -> dict[str, Any]:
    """The settings of a run: `defaults` and `profiles[profile]` of `_config.yml`, then the user's
    `overlay` (a YAML file with a profile's keys), then `overrides` (command-line options), each
    deep-merged over the one before.

    Each layer's relative paths are resolved against its own folder: the profile's against the
    repository, the overlay's against the overlay file's folder, the overrides' against the working
    directory. The result is checked before it is returned (rcdm_lib.settings): every key and type,
    every chapter parameter against its chapter's parameters cell, and (`check_files`) that every file
    and folder it names exists. A problem raises SettingsError naming each key and what to fix.
    The merged dict has two more keys: `profile` (the name) and `overlay` (the overlay's absolute path
    or None), so that a script can hand the same settings to another.
    """
    from rcdm_lib.settings import SettingsError, resolve_paths

    path = Path(path) if path is not None else DEFAULT_CONFIG
    cfg = read_config(path)
    if profile not in cfg["profiles"]:
        raise SettingsError([f"unknown profile {profile!r}; expected one of {sorted(cfg['profiles'])} "
                             f"(defined in {path.name})"])
    layers = [("_config.yml defaults", cfg.get("defaults") or {}, path.parent),
              (f"_config.yml profiles.{profile}", cfg["profiles"][profile] or {}, path.parent)]
    if overlay is not None:
        overlay = Path(overlay).expanduser().resolve()
        layers.append((f"--config {overlay}", read_overlay(overlay), overlay.parent))
    if overrides:
        layers.append(("the command line", overrides, Path.cwd()))
    from rcdm_lib.settings import custom_checkpoint_problems, custom_names

    custom = set().union(*(custom_names(layer) for _, layer, _ in layers))
    problems = [f"{where}: {p}" for where, layer, _ in layers
                for p in layer_problems(layer) + custom_checkpoint_problems(layer, custom)]
    problems += [f"{where}: {p}" for i, (where, layer, _) in enumerate(layers[2:], 2)
                 for p in nulled_problems(_merged_body(layers[:i]), layer)]
    if problems:   # each layer's keys and types, named with the file that says them
        raise SettingsError(problems)
    merged: dict = {}
    for _, layer, base in layers:
        merged = _deep_merge(merged, resolve_paths(copy.deepcopy(layer), base))
    check_settings(merged, check_files=check_files)
    merged.update(profile=profile, overlay=str(overlay) if overlay is not None else None)
    return merged


def _merged_body(layers) -> dict:
    out: dict = {}
    for _, layer, _ in layers:
        out = _deep_merge(out, layer)
    return out


def nulled_problems(below: dict, layer: dict, where: str = "") -> list[str]:
    """Keys that `layer` sets to null where the layers below it give a value the scripts need (every setting but
    a path, which null switches off): a null there would fail later, inside the work."""
    from rcdm_lib.settings import Settings, is_path_key

    out = []
    for key, value in layer.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in below or below[key] is None:
            continue
        if isinstance(value, dict) and isinstance(below[key], dict):
            out += nulled_problems(below[key], value, full)
        elif value is None and not is_path_key(Settings, full):
            out.append(f"{full} is null, but the profile sets it ({below[key]!r}) and the work needs a value: give "
                       "one, or leave the key out to keep the profile's")
    return out


def read_overlay(path: Path) -> dict:
    """A user's settings file: YAML holding a profile's keys."""
    from rcdm_lib.settings import SettingsError

    if not path.is_file():
        raise SettingsError([f"--config {path} does not exist; expected a YAML file with a profile's keys"])
    try:
        with open(path) as f:
            out = yaml.load(f, Loader=SAFE_LOADER)
    except yaml.YAMLError as e:
        raise SettingsError([f"--config {path} is not valid YAML: {str(e).splitlines()[0]}"]) from None
    if out is None:
        return {}
    if not isinstance(out, dict):
        raise SettingsError([f"--config {path} holds a {type(out).__name__}; expected a mapping of a profile's keys "
                             "(data:, encoders:, rcdm:, ...)"])
    return out


def layer_problems(values: dict) -> list[str]:
    """The problems of one settings mapping's keys and types (rcdm_lib.settings), chapter parameters included."""
    from rcdm_lib.settings import LOADER_KEYS, Settings, chapter_parameters, check_mapping, notebook_problems

    problems = [f"{k} is set by the loader, not by a settings file" for k in LOADER_KEYS if k in values]
    body = {k: v for k, v in values.items() if k not in LOADER_KEYS}
    problems += check_mapping(Settings, body)
    if isinstance(body.get("notebooks"), dict):
        chapters = {src.stem: chapter_parameters(src) for src in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))}
        problems += notebook_problems(body["notebooks"], chapters)
    return problems


def check_settings(settings: dict, check_files: bool = True) -> None:
    """Raise SettingsError when merged settings cannot run (see load_settings)."""
    from rcdm_lib.settings import LOADER_KEYS, SettingsError, custom_checkpoint_problems, data_problems, file_problems

    body = {k: v for k, v in settings.items() if k not in LOADER_KEYS}
    problems = layer_problems(body) + custom_checkpoint_problems(body)
    if check_files:
        problems += file_problems(body) + data_problems(body)
    if problems:
        raise SettingsError(problems)


SETTINGS_SUFFIX = ".settings.json"


def write_settings(settings: dict, folder: str | Path) -> Path:
    """Write merged settings into `folder` as `<hash>.settings.json` (atomically: a temporary file, then a
    rename) and return the file; the same settings give the same file."""
    blob = json.dumps(settings, sort_keys=True, indent=1)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{hashlib.sha256(blob.encode()).hexdigest()[:16]}{SETTINGS_SUFFIX}"
    if not out.is_file():
        atomic_write_text(out, blob + "\n")
    return out


def settings_hash(settings: dict) -> str:
    """A hash of the settings that does not depend on where the repository lies (paths inside it are
    hashed relative to it), for cache keys."""
    root = str(REPO_ROOT)

    def norm(v):
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, str) and (v == root or v.startswith(root + os.sep)):
            return "<repo>" + v[len(root):]
        return v

    return hashlib.sha256(json.dumps(norm(settings), sort_keys=True).encode()).hexdigest()[:20]


def as_settings(spec) -> dict[str, Any]:
    """Settings from a dict (returned as is), a settings file written by `write_settings`, or a profile name."""
    if isinstance(spec, dict):
        return spec
    if str(spec).endswith(SETTINGS_SUFFIX):
        p = repo_path(spec)
        if not p.is_file():
            raise FileNotFoundError(f"settings file {p} does not exist; it is written by scripts/run_notebooks.py")
        settings = json.loads(p.read_text())
        check_settings(settings)
        return settings
    return load_settings(str(spec))


def add_settings_args(parser, default_profile: str = "tiny") -> None:
    """--profile and --config, for every script that reads settings."""
    parser.add_argument("--profile", default=default_profile,
                        help="run profile from _config.yml: smoke, tiny or imagenet128 (default %(default)s)")
    parser.add_argument("--config", metavar="FILE",
                        help="your own settings: a YAML file with a profile's keys, deep-merged over the profile; "
                             "relative paths in it are relative to its folder")


def settings_from_args(args, overrides: dict | None = None, check_files: bool = True) -> dict[str, Any]:
    """The settings of `--profile` and `--config` (add_settings_args); a problem exits with its sentences."""
    from rcdm_lib.settings import SettingsError

    try:
        return load_settings(args.profile, args.config, overrides=overrides, check_files=check_files)
    except SettingsError as e:
        raise SystemExit(str(e)) from None


def resolve_device(spec: str | None = "auto"):
    """'auto' -> cuda if available else cpu; anything else is passed to torch.device."""
    import torch

    if spec in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)
