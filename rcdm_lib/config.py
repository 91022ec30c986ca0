"""Run profiles from `_config.yml` at the repository root.

A profile is `defaults` deep-merged with `profiles[name]`. Library code takes plain
arguments; only scripts and notebooks read profiles.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "_config.yml"


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


def read_config(path: str | Path | None = None) -> dict:
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"profile file {path} not found; expected the repository's _config.yml")
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    if "profiles" not in cfg or not isinstance(cfg["profiles"], dict):
        raise ValueError(f"{path} has no 'profiles' mapping; expected keys 'defaults' and 'profiles'")
    return cfg


def profile_names(path: str | Path | None = None) -> list[str]:
    return list(read_config(path)["profiles"])


def load_profile(name: str, path: str | Path | None = None) -> dict[str, Any]:
    """Return the merged settings of profile `name` (with key `profile` set to the name)."""
    cfg = read_config(path)
    if name not in cfg["profiles"]:
        raise ValueError(
            f"unknown profile {name!r}; expected one of {sorted(cfg['profiles'])} (defined in _config.yml)"
        )
    merged = _deep_merge(cfg.get("defaults") or {}, cfg["profiles"][name] or {})
    merged["profile"] = name
    return merged


def resolve_device(spec: str | None = "auto"):
    """'auto' -> cuda if available else cpu; anything else is passed to torch.device."""
    import torch

    if spec in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)
