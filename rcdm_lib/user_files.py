"""Every file a user names, opened one guarded way: tensors only, and one sentence when it fails.

A PyTorch file is read with `torch.load(..., weights_only=True)`, so a file whose unpickling would run code is
refused, never executed; a safetensors file is read by safetensors. Whatever goes wrong (no such file, a folder,
a pickle of Python objects, a file cut short, a single tensor instead of a state dict, a safetensors file of
another kind, metadata without its config) ends in a `UserFileError`: one sentence that names what the file was
for, its path, what was expected and where such a file comes from.

    sd = read_state_dict(path, what="RCDM checkpoint (rcdm.checkpoints.dino_backbone)",
                         expected="rcdm_ema_dino_trunk.pt from github.com/facebookresearch/RCDM")
"""
from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch


class UserFileError(ValueError):
    """A file a user named cannot be used; the message is one sentence naming it."""


class MissingUserFile(UserFileError, FileNotFoundError):
    """The file a user named does not exist (or none was named)."""


def _detail(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = text[0].split(". ")[0].rstrip(".")[:160] if text else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def require_file(path, what: str, expected: str) -> Path:
    """`path` as a Path when it is a file; else a UserFileError saying where such a file comes from."""
    if path is None or str(path) == "":
        raise MissingUserFile(f"no {what} was given; expected {expected}")
    path = Path(path)
    if path.is_dir():
        raise UserFileError(f"{what} {path} is a folder, not a file; expected {expected}")
    if not path.is_file():
        raise MissingUserFile(f"{what} {path} does not exist; expected {expected}")
    return path


def read_torch(path, what: str, expected: str, mmap: bool = False, map_location="cpu") -> Any:
    """torch.load(path, weights_only=True), every failure one sentence naming the file."""
    path = require_file(path, what, expected)
    try:
        try:
            return torch.load(str(path), map_location=map_location, weights_only=True, mmap=mmap)
        except RuntimeError as e:
            if not (mmap and "mmap can only be used" in str(e)):
                raise
            return torch.load(str(path), map_location=map_location, weights_only=True)  # a legacy (non-zip) file
    except pickle.UnpicklingError as e:  # weights_only refused a Python object: never load it another way
        if "GLOBAL" not in str(e) and "Unsupported class" not in str(e):  # not a pickle at all
            raise UserFileError(f"{what} {path} cannot be read: it is not a PyTorch file ({_first_global(e)}); "
                                f"expected {expected}") from None
        raise UserFileError(
            f"{what} {path} holds Python objects besides tensors, which are not loaded here because loading them "
            f"could run code ({_first_global(e)}); expected {expected}, a file of tensors only (re-save a file you "
            f"trust with torch.save(model.state_dict(), path))") from None
    except Exception as e:  # noqa: BLE001 - cut short, not a zip, a pickle stack in pieces: all one sentence
        raise UserFileError(f"{what} {path} cannot be read: it is cut short or not a PyTorch file ({_detail(e)}); "
                            f"expected {expected}") from None


def _first_global(e: pickle.UnpicklingError) -> str:
    """The refused global torch names in its message ('Unsupported global: GLOBAL posix.system ...'), or the
    first line of the message; never torch's advice to load with weights_only=False."""
    for line in str(e).splitlines():
        if "GLOBAL" in line or "Unsupported" in line:
            return line.strip().split(". ")[0].rstrip(".")[:200].replace("WeightsUnpickler error: ", "")
    return "refused by weights_only=True"


def as_state_dict(obj: Any, path, what: str, expected: str, wrappers: tuple[str, ...] = ("state_dict",),
                  prefix: str = "module.") -> dict[str, torch.Tensor]:
    """The tensors of a loaded object: a mapping of name to tensor, unwrapped from the first of `wrappers` it
    has, with a leading `prefix` stripped; anything else is a UserFileError naming what the file holds."""
    if isinstance(obj, Mapping):
        for key in wrappers:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        kind = "an empty mapping" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise UserFileError(f"{what} {path} holds {kind}, not a state dict of named tensors; expected {expected}")
    odd = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if odd is not None:
        raise UserFileError(f"{what} {path} is not a state dict of tensors (its entry {odd!r} is a "
                            f"{type(obj[odd]).__name__}); expected {expected}")
    return {str(k).removeprefix(prefix) if prefix else str(k): v for k, v in obj.items()}


def read_state_dict(path, what: str, expected: str, wrappers: tuple[str, ...] = ("state_dict",),
                    prefix: str = "module.", mmap: bool = False, map_location="cpu") -> dict[str, torch.Tensor]:
    """read_torch, then as_state_dict: the named tensors of a .pt/.pth file."""
    obj = read_torch(path, what, expected, mmap=mmap, map_location=map_location)
    return as_state_dict(obj, path, what, expected, wrappers, prefix)


def safetensors_metadata(path, what: str, expected: str, fmt: str | None = None,
                         require: tuple[str, ...] = ()) -> dict[str, str]:
    """The metadata of a safetensors file; with `fmt`, its `format` entry must be that, and every key of
    `require` must be present (each else a UserFileError)."""
    from safetensors import safe_open

    path = require_file(path, what, expected)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 - SafetensorError, a header too large, not UTF-8: all one sentence
        raise UserFileError(f"{what} {path} is not a readable safetensors file (cut short, or another format: "
                            f"{_detail(e)}); expected {expected}") from None
    if fmt is not None and meta.get("format") != fmt:
        got = f"format {meta['format']!r}" if meta.get("format") else "no format entry"
        raise UserFileError(f"{what} {path} is a safetensors file of another kind (its metadata has {got}, "
                            f"expected {fmt!r}); expected {expected}")
    missing = [k for k in require if k not in meta]
    if missing:
        raise UserFileError(f"{what} {path} lacks the metadata entry {missing[0]!r} that holds its config; "
                            f"expected {expected}")
    return meta


def metadata_json(meta: Mapping[str, str], key: str, path, what: str, expected: str) -> Any:
    """The JSON value stored under `key` in a file's metadata (a UserFileError when absent or not JSON)."""
    if key not in meta:
        raise UserFileError(f"{what} {path} lacks the metadata entry {key!r}; expected {expected}")
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as e:
        raise UserFileError(f"{what} {path} has a metadata entry {key!r} that is not JSON ({_detail(e)}); "
                            f"expected {expected}") from None


def read_safetensors(path, what: str, expected: str, device="cpu") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (check its metadata first with safetensors_metadata)."""
    from safetensors.torch import load_file

    path = require_file(path, what, expected)
    try:
        return load_file(str(path), device=str(device))
    except Exception as e:  # noqa: BLE001 - the header was read; the data may still be cut short
        raise UserFileError(f"{what} {path} cannot be read: its tensors are cut short or damaged ({_detail(e)}); "
                            f"expected {expected}") from None


def load_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], path, what: str,
                expected: str, assign: bool = False) -> None:
    """model.load_state_dict(strict=True), a misfit named in one sentence: the first missing and the first
    unexpected key, or the first key of another shape (with both shapes)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shaped = [k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if missing or unexpected or shaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first {unexpected[0]!r})")
        if shaped:
            k = shaped[0]
            parts.append(f"{len(shaped)} keys of another shape (first {k!r}: file {list(state_dict[k].shape)}, "
                         f"model {list(own[k].shape)})")
        raise UserFileError(f"{what} {path} does not fit its model: {', '.join(parts)}; expected {expected}")
    model.load_state_dict(state_dict, strict=True, assign=assign)
