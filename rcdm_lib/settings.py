"""The settings of a run: what a profile (`_config.yml`) and a user's overlay may say, and the check of it.

Every section is a dataclass; `check_settings` walks a merged mapping against them, so a key, a type
or a file is checked by one mechanism generated from the fields, not key by key. Fields that name a
file carry `metadata={"path": ...}`:

- "file" / "dir": an input the user names (a checkpoint, the data folder); it must exist;
- "out": where a run writes (run folders, exports, caches); resolved, never required to exist.

Sections whose keys are another object's constructor arguments (`rcdm.unet` is `UNetConfig`,
`rcdm.train` is `TrainConfig`, ...) are checked against that dataclass itself. Loading and merging
live in `rcdm_lib.config`.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from rcdm_lib.data.augment import AugmentConfig
from rcdm_lib.encoders.custom import CustomEncoderSpec
from rcdm_lib.encoders.tiny import METHODS, TinyEncoderConfig
from rcdm_lib.encoders.training import EncoderLoss, EncoderSchedule
from rcdm_lib.fields import at_least, one_of
from rcdm_lib.icgan.config import ICGANConfig, ICGANTrainConfig
from rcdm_lib.superres.model import SuperResConfig
from rcdm_lib.training.config import DiffusionConfig, TrainConfig
from rcdm_lib.unet import UNetConfig


class SettingsError(ValueError):
    """Settings that cannot run; the message has one sentence per problem, each naming its key."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n  - ".join(["the settings cannot run:", *self.problems]))


def _in(kind: str, default=None):
    return field(default=default, metadata={"path": kind})


# --------------------------------------------------------------------------- sections

@dataclass
class SplitLengths:
    train: int = at_least(1, 50000)
    val: int = at_least(1, 5000)
    test: int = at_least(1, 5000)


@dataclass
class DataSettings:
    """The built-in data (`size`, `seed`, `lengths`) or an ImageFolder (`root` holding train/ and val/)."""

    size: int | None = at_least(1, None)              # built-in data: the image size of the factor dataset
    seed: int = at_least(0, 0)
    lengths: SplitLengths | None = None
    root: str | None = _in("dir")        # holds train/ and val/, each an ImageFolder
    image_size: int | None = at_least(1, None)        # RCDM resolution (ImageFolder data)
    encoder_size: int | None = at_least(1, None)      # encoder input (ImageFolder data)


@dataclass
class EncoderWeights:
    """The published encoder files (imagenet128), see rcdm_lib/encoders/formats.py."""

    supervised: str | None = _in("file")
    dino: str | None = _in("file")
    simclr: str | None = _in("file")
    barlow: str | None = _in("file")
    vicreg: str | None = _in("file")
    swav: str | None = _in("file")


@dataclass
class EncoderMethodSettings:
    train: EncoderSchedule | None = None
    model: TinyEncoderConfig | None = None
    loss: EncoderLoss | None = None
    augment: AugmentConfig | None = None


# One key per tiny encoder method, generated from METHODS (a method added there is a setting here too):
# `encoders.per_method.<method>` (its own train/model/loss/augment) and `encoders.steps.<method>`.
PerMethod = dataclasses.make_dataclass(
    "PerMethod", [(m, EncoderMethodSettings | None, None) for m in METHODS])
MethodSteps = dataclasses.make_dataclass(
    "MethodSteps", [(m, int | None, at_least(1, None)) for m in METHODS])


@dataclass
class ProbeSettings:
    train_length: int = at_least(1, 10000)
    epochs: int = at_least(1, 50)


@dataclass
class EncoderSettings:
    dir: str | None = _in("out")         # the tiny encoders (trained there when missing)
    methods: list[str] = field(default_factory=list, metadata={"choices": METHODS})
    model: TinyEncoderConfig | None = None
    train: EncoderSchedule | None = None
    steps: MethodSteps | None = None
    per_method: PerMethod | None = None
    probe: ProbeSettings | None = None
    weights: EncoderWeights | None = None
    custom: dict[str, CustomEncoderSpec] = field(default_factory=dict)   # your own encoders (rcdm_lib.encoders.custom)


@dataclass
class RCDMCheckpoints:
    """One RCDM per representation: the official rcdm_ema_*.pt files or .safetensors exports of scripts/train.py.
    Besides the release's names, a key may name an encoder of `encoders.custom` (checked on the merged settings:
    custom_checkpoint_problems)."""

    OPEN_KEYS = "file"   # the kind of path an extra key holds

    supervised_backbone: str | None = _in("file")
    simclr_backbone: str | None = _in("file")
    simclr_head: str | None = _in("file")
    barlow_backbone: str | None = _in("file")
    barlow_head: str | None = _in("file")
    vicreg_backbone: str | None = _in("file")
    vicreg_head: str | None = _in("file")
    dino_backbone: str | None = _in("file")
    dino_head: str | None = _in("file")
    swav_backbone: str | None = _in("file")   # chapter 15: the IC-GAN release is conditioned on SwAV


@dataclass
class BesideRCDM:
    """`rcdm.beside.<name>`: a single-representation RCDM (an export of `scripts/train.py --encoder ENCODER`) shown
    beside the run's own representations, on the tiny or published encoder of `encoder` (encoders.weights.<encoder>,
    else encoders.dir/<encoder>.safetensors). At tiny: the DINO ViT's RCDM and the ResNet DINO one of the same
    recipe (scripts/recipes/tiny_dino_vit.yaml) beside the slot model."""

    encoder: str = one_of(*sorted(set(METHODS) | {"swav"}))
    checkpoint: str | None = _in("file")
    layer: str = one_of("backbone", "head", default="backbone")


@dataclass
class RCDMSettings:
    image_size: int | None = at_least(1, None)
    train_length: int | None = at_least(1, None)
    out: str | None = _in("out")
    export: str | None = _in("out")
    unet: UNetConfig | None = None
    diffusion: DiffusionConfig | None = None
    train: TrainConfig | None = None
    checkpoints: RCDMCheckpoints | None = None
    beside: dict[str, BesideRCDM] = field(default_factory=dict)


@dataclass
class ICGANSettings:
    slot: str | None = None               # the representation IC-GAN is conditioned on
    image_size: int | None = at_least(1, None)
    train_length: int | None = at_least(1, None)
    out: str | None = _in("out")
    export: str | None = _in("out")
    model: ICGANConfig | None = None
    train: ICGANTrainConfig | None = None
    weights: str | None = _in("file")     # the official G_ema_best0.pth
    flags: dict = field(default_factory=dict)   # the release's flag names (G_ch, resolution, ...)


@dataclass
class SuperResSettings:
    small_size: int | None = at_least(1, None)
    large_size: int | None = at_least(1, None)
    train_length: int | None = at_least(1, None)
    out: str | None = _in("out")
    export: str | None = _in("out")
    unet: SuperResConfig | None = None
    diffusion: DiffusionConfig | None = None
    train: TrainConfig | None = None
    checkpoint: str | None = _in("file")  # ADM's released upsampler
    flags: dict = field(default_factory=dict)   # official flag names (default: read from the file name)


@dataclass
class MetricsSettings:
    inception_weights: str | None = _in("file")   # torch-fidelity's inception-v3-compat weights


@dataclass
class UnconditionalSettings:
    checkpoint: str | None = _in("file")  # an ADM unconditional checkpoint in the official format
    flags: dict = field(default_factory=dict)


@dataclass
class BookSettings:
    title: str | None = None


@dataclass
class Settings:
    """A profile of `_config.yml` (after `defaults`) or an overlay: every key either may hold."""

    description: str | None = None
    seed: int = at_least(0, 0)
    device: str = "auto"
    cache_dir: str | None = _in("out")
    artifacts_dir: str | None = _in("out")
    models_budget_s: float | None = at_least(0, None)
    data: DataSettings | None = None
    encoders: EncoderSettings | None = None
    rcdm: RCDMSettings | None = None
    icgan: ICGANSettings | None = None
    superres: SuperResSettings | None = None
    metrics: MetricsSettings | None = None
    unconditional: UnconditionalSettings | None = None
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    book: BookSettings | None = None


# Keys the loader sets on the merged settings (not for a profile or an overlay to set).
LOADER_KEYS = ("profile", "overlay")


# --------------------------------------------------------------------------- walking the schema

def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp):
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else Union[tuple(args)]), len(args) < len(typing.get_args(tp))
    return tp, tp is Any


def _what(tp) -> str:
    """A type, as a user reads it."""
    tp, _ = _strip_optional(tp)
    if dataclasses.is_dataclass(tp):
        return "a mapping of keys"
    origin = typing.get_origin(tp)
    if origin in (list, tuple) or tp in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_what(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            Any: "any value"}.get(tp, getattr(tp, "__name__", str(tp)))


def _element_type(tp, i: int):
    """The type of element i of a list or tuple type (Any for a bare list or tuple)."""
    args = typing.get_args(tp)
    if not args:
        return Any
    if typing.get_origin(tp) is list or args[-1] is Ellipsis:
        return args[0]
    return args[i] if i < len(args) else Any


def _type_problem(value, tp, key: str) -> str | None:
    """A sentence when `value` is not of type `tp` (scalars and lists; mappings are walked by the caller)."""
    base, optional = _strip_optional(tp)
    if value is None:
        return None if optional else f"{key} is null; expected {_what(base)}"
    origin = typing.get_origin(base)
    if base is Any:
        return None
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif base is str:
        ok = isinstance(value, str)
    elif origin in (list, tuple) or base in (list, tuple):
        if isinstance(value, str) and "," in value:   # the official flags' "32,16,8" form
            return None
        if not isinstance(value, (list, tuple)):
            ok = False
        else:
            for i, v in enumerate(value):
                p = _type_problem(v, _element_type(base, i), f"{key}[{i}]")
                if p:
                    return p
            ok = True
    elif origin is dict or base is dict:
        ok = isinstance(value, dict)
    else:
        ok = True
    if ok:
        return None
    hint = ""
    if base in (int, float) and isinstance(value, str):
        try:
            float(value)
            hint = " (YAML 1.1 reads a number such as 5e-4 without a dot as a string: write 5.0e-4)"
        except ValueError:
            pass
    return f"{key} is {value!r}; expected {_what(base)}{hint}"


def _unknown(key: str, where: str, valid) -> str:
    near = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    full = f"{where}.{key}" if where else key
    return (f"{full} is not a setting" + (f"; did you mean {where + '.' if where else ''}{near[0]}?" if near
                                          else f"; expected one of {sorted(valid)}"))


def check_mapping(cls, values, where: str = "") -> list[str]:
    """The problems of `values` (a mapping from a profile or an overlay) against dataclass `cls`:
    unknown keys (with the nearest valid key), wrong types, nested sections walked."""
    if not isinstance(values, dict):
        return [f"{where or 'the settings'} is {values!r}; expected a mapping of keys"]
    hints = _hints(cls)
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}
    problems = []
    for key, value in values.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in hints and getattr(cls, "OPEN_KEYS", None):   # a name checked on the merged settings
            if not (isinstance(value, str) or value is None):   # a typo of a release name, or a wrong type
                near = difflib.get_close_matches(str(key), list(hints), n=1, cutoff=0.6)
                problems.append(_unknown(str(key), where, hints) if near else f"{full} is {value!r}; expected a path")
            continue
        if key not in hints:
            problems.append(_unknown(str(key), where, hints))
            continue
        found = check_value(hints[key], value, full)
        problems += found or _range_problems(value, meta.get(key) or {}, full)
    return problems


def _range_problems(value, meta, key: str) -> list[str]:
    """The range of a number against its field's metadata ("min", "max", "gt"), or a value against its "choices";
    lists are checked element-wise."""
    if "choices" in meta and not isinstance(value, (list, tuple)):
        return [] if value in meta["choices"] else [
            f"{key} is {value!r}; expected one of {', '.join(map(repr, meta['choices']))}"]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _range_problems(v, meta, f"{key}[{i}]")]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return []
    lo, hi, gt = meta.get("min"), meta.get("max"), meta.get("gt")
    if value != value:   # NaN
        return [f"{key} is NaN; expected a number"]
    if (lo is not None and value < lo) or (hi is not None and value > hi) or (gt is not None and value <= gt):
        allowed = (f"between {lo} and {hi}" if lo is not None and hi is not None else
                   f"at least {lo}" if lo is not None else f"at most {hi}" if hi is not None else f"more than {gt}")
        return [f"{key} is {value}; expected a number {allowed}"]
    return []


def check_dataclass_values(cls, values, where: str) -> None:
    """Raise SettingsError when `values` do not fit dataclass `cls` (keys, types, ranges): the check a config runs
    on what reaches it without a settings file (command-line options, a checkpoint's saved config)."""
    problems = check_mapping(cls, dict(values), where)
    if problems:
        raise SettingsError(problems)


def check_value(tp, value, key: str) -> list[str]:
    base, optional = _strip_optional(tp)
    if value is None:
        return [] if optional else [f"{key} is null; expected {_what(base)}"]
    if dataclasses.is_dataclass(base):
        return check_mapping(base, value, key)
    if typing.get_origin(base) is dict and isinstance(value, dict):
        _, vt = typing.get_args(base)
        return [p for k, v in value.items() for p in check_value(vt, v, f"{key}.{k}")]
    p = _type_problem(value, base, key)
    return [p] if p else []


def is_path_key(cls, dotted: str) -> bool:
    """Whether the dotted key names a field with path metadata ("file", "dir", "out") under dataclass `cls`."""
    *sections, last = dotted.split(".")
    for name in sections:
        base, _ = _strip_optional(_hints(cls).get(name, Any)) if dataclasses.is_dataclass(cls) else (Any, True)
        if not dataclasses.is_dataclass(base):
            return False
        cls = base
    return dataclasses.is_dataclass(cls) and last in path_fields(cls)


def path_fields(cls) -> dict[str, str]:
    """{field name: "file" | "dir" | "out"} of dataclass `cls`."""
    return {f.name: f.metadata["path"] for f in dataclasses.fields(cls) if "path" in f.metadata}


def walk_paths(cls, values: dict, where: str = ""):
    """Yield (mapping, key, kind, dotted key) for every path-valued field set in `values`."""
    if not isinstance(values, dict) or not dataclasses.is_dataclass(cls):
        return
    hints, kinds = _hints(cls), path_fields(cls)
    words = {f.name: f.metadata.get("word") for f in dataclasses.fields(cls)}
    for key, value in values.items():
        full = f"{where}.{key}" if where else key
        if key in kinds and isinstance(value, str):
            if value != words.get(key):   # a field's one word that is not a path (weights: none)
                yield values, key, kinds[key], full
            continue
        if key not in hints and getattr(cls, "OPEN_KEYS", None) and isinstance(value, str):
            yield values, key, cls.OPEN_KEYS, full
            continue
        base, _ = _strip_optional(hints.get(key, Any))
        if dataclasses.is_dataclass(base):
            yield from walk_paths(base, value, full)
        elif typing.get_origin(base) is dict and isinstance(value, dict):
            vt = typing.get_args(base)[1]
            vt, _ = _strip_optional(vt)
            if dataclasses.is_dataclass(vt):
                for k, v in value.items():
                    yield from walk_paths(vt, v, f"{full}.{k}")


def resolve_paths(values: dict, base: Path) -> dict:
    """`values` (one layer: a profile or an overlay) with its relative paths made absolute against `base`
    (the folder of the file the layer came from), `~` expanded. Changes `values` in place and returns it."""
    for mapping, key, _, _ in list(walk_paths(Settings, values)):
        p = Path(mapping[key]).expanduser()
        mapping[key] = str(p if p.is_absolute() else (base / p).resolve())
    return values


def file_problems(values: dict) -> list[str]:
    """Sentences for the files and folders the settings name that are not there."""
    problems = []
    for mapping, key, kind, full in walk_paths(Settings, values):
        p = Path(mapping[key])
        if kind == "file" and not p.is_file():
            problems.append(f"{full} names {p}, which is not a file" + (" (it is a folder)" if p.is_dir() else "")
                            + f": fix {full} in your --config file")
        elif kind == "dir" and not p.is_dir():
            problems.append(f"{full} names {p}, which is not a folder: fix {full} in your --config file")
    return problems


def _section(values, *keys) -> dict:
    """values[k1][k2]... when each is a mapping, else {} (a wrong type is named by the type check)."""
    for k in keys:
        values = values.get(k) if isinstance(values, dict) else None
    return values if isinstance(values, dict) else {}


def custom_names(values: dict) -> set[str]:
    return set(_section(values, "encoders", "custom"))


def custom_checkpoint_problems(values: dict, custom: set[str] | None = None) -> list[str]:
    """rcdm.checkpoints keys that are neither a release name nor an encoder of encoders.custom (`custom`: the
    names every layer of the settings declares; default: those `values` declares)."""
    custom = custom_names(values) if custom is None else custom
    valid = {f.name for f in dataclasses.fields(RCDMCheckpoints)} | custom
    problems = [_unknown(k, "rcdm.checkpoints", valid) + ("" if custom else " (or declare it under encoders.custom)")
                for k in _section(values, "rcdm", "checkpoints") if k not in valid]
    for name in _section(values, "rcdm", "beside"):   # a name the run already gives a representation cannot be reused
        if name in custom or name.endswith(("_backbone", "_head")):
            problems.append(f"rcdm.beside.{name}: the name of " + ("an encoder of encoders.custom" if name in custom
                            else "a representation of the run's own (<method>_backbone, <method>_head)")
                            + "; give the model beside them another name")
    return problems


def data_problems(values: dict) -> list[str]:
    """The data the settings need: the built-in data (data.size) or a root holding train/ and val/."""
    d = values.get("data") or {}
    root = d.get("root")
    if root is None:
        return [] if d.get("size") else [
            "data.root is not set and the profile has no built-in data (data.size): set data.root to a folder "
            "holding train/ and val/, each an ImageFolder (one folder per class)"]
    root = Path(root)
    if not root.is_dir():
        return []   # file_problems says so
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        return [f"data.root {root} has no {' and no '.join(m + '/' for m in missing)}: data.root must hold train/ "
                "and val/, each an ImageFolder (one folder per class); point it at the folder above them"]
    return []


# --------------------------------------------------------------------------- chapter parameters

def chapter_parameters(src: Path) -> dict[str, Any]:
    """The names and default values of the parameters cell of a chapter source (jupytext py:percent)."""
    lines = Path(src).read_text().splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("# %%") and "parameters" in ln), None)
    if start is None:
        return {}
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# %%")), len(lines))
    out = {}
    for node in ast.parse("\n".join(lines[start + 1:end])).body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    try:
                        out[t.id] = ast.literal_eval(node.value)
                    except ValueError:
                        out[t.id] = None
    return out


def notebook_problems(notebooks: dict, chapters: dict[str, dict[str, Any]]) -> list[str]:
    """Misspelt chapter names and parameters in `notebooks:`, and values of another type than the
    chapter's default (`chapters`: name -> its parameters cell)."""
    problems = []
    for name, params in (notebooks or {}).items():
        if name not in chapters:
            problems.append(_unknown(str(name), "notebooks", chapters))
            continue
        defaults = chapters[name]
        for key, value in (params or {}).items():
            full = f"notebooks.{name}.{key}"
            if key not in defaults:
                problems.append(_unknown(str(key), f"notebooks.{name}", defaults)
                                + f" (the parameters cell of notebooks/{name}.py defines {sorted(defaults)})")
                continue
            d = defaults[key]
            if d is None or value is None:
                continue
            tp = float if isinstance(d, float) else type(d)
            p = _type_problem(value, list if tp is tuple else tp, full)
            if p:
                problems.append(p + f" (the default in notebooks/{name}.py is {d!r})")
    return problems
