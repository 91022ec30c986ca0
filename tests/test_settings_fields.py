"""Every field of every config dataclass the settings reach, generated from the dataclasses (a new field is covered
without new test code): a wrong type, an out-of-range value and a misspelt key each stop the settings before any
model is built, with a sentence naming the key."""
from __future__ import annotations

import dataclasses
import typing

import pytest

from rcdm_lib.config import load_settings
from rcdm_lib.settings import Settings, SettingsError, _hints, _strip_optional

EXAMPLE_KEY = "dino"   # the key under mappings of sections (encoders.per_method.<method>)


def every_field():
    """(dotted path as a tuple of keys, the field's type, its metadata) for every field reachable from Settings."""
    out, stack = [], [((), Settings)]
    while stack:
        where, cls = stack.pop()
        meta = {f.name: f.metadata for f in dataclasses.fields(cls)}
        for name, tp in _hints(cls).items():
            base, _ = _strip_optional(tp)
            path = where + (name,)
            if dataclasses.is_dataclass(base):
                stack.append((path, base))
            elif typing.get_origin(base) is dict and typing.get_args(base) and \
                    dataclasses.is_dataclass(_strip_optional(typing.get_args(base)[1])[0]):
                stack.append((path + (EXAMPLE_KEY,), _strip_optional(typing.get_args(base)[1])[0]))
            out.append((path, tp, meta.get(name) or {}))
    return out


FIELDS = every_field()


def nested(path: tuple, value) -> dict:
    out = value
    for key in reversed(path):
        out = {key: out}
    return out


def problems(path: tuple, value) -> str:
    with pytest.raises(SettingsError) as e:
        load_settings("tiny", overrides=nested(path, value), check_files=False)
    return str(e.value)


def wrong_type(tp):
    base, _ = _strip_optional(tp)
    origin = typing.get_origin(base)
    if base is typing.Any:
        return None
    if base in (int, float):
        return "ten"
    if base is bool:
        return "yes"
    if base is str:
        return 5
    if dataclasses.is_dataclass(base) or base is dict or origin is dict:
        return 5
    if base in (list, tuple) or origin in (list, tuple):
        return 5
    raise AssertionError(f"no wrong value for type {tp}")


def test_the_walk_reaches_every_section():
    names = {".".join(p) for p, _, _ in FIELDS}
    assert {"rcdm.train.steps", "rcdm.unet.model_channels", "icgan.train.g_lr", "superres.unet.small_size",
            "data.lengths.train", "encoders.probe.epochs", f"encoders.per_method.{EXAMPLE_KEY}.loss"} <= names
    assert len(FIELDS) > 150


@pytest.mark.parametrize("path", [p for p, _, _ in FIELDS], ids=lambda p: ".".join(p))
def test_a_misspelt_key_is_named_with_the_nearest_valid_one(path):
    key = ".".join(path)
    msg = problems(path[:-1] + (path[-1] + "x",), 1)
    assert f"{key}x is not a setting; did you mean {key}?" in msg


@pytest.mark.parametrize("path,tp", [(p, t) for p, t, _ in FIELDS if wrong_type(t) is not None],
                         ids=lambda x: ".".join(x) if isinstance(x, tuple) else "")
def test_a_wrong_type_is_named_with_what_is_allowed(path, tp):
    msg = problems(path, wrong_type(tp))
    assert f"{'.'.join(path)} is " in msg and "expected" in msg, msg


NUMERIC = [(p, t, m) for p, t, m in FIELDS
           if _strip_optional(t)[0] in (int, float) or typing.get_args(_strip_optional(t)[0])[:1] in ((int,), (float,))]


def test_every_number_declares_its_range():
    """A numeric field without a range would accept anything: rcdm_lib.fields.at_least / between / above."""
    missing = [".".join(p) for p, _, m in NUMERIC if not ({"min", "max", "gt", "choices"} & set(m))
               and p[-1] not in ("notebooks",)]
    assert not missing, f"numeric settings with no declared range: {missing}"


def out_of_range(tp, meta):
    if "choices" in meta:
        return "no-such-choice"
    low = meta.get("min", meta.get("gt"))
    bad = (low - 1) if low is not None else meta["max"] + 1
    base, _ = _strip_optional(tp)
    if base is int or typing.get_args(base)[:1] == (int,):
        bad = int(bad)
    if typing.get_origin(base) in (list, tuple) or base in (list, tuple):
        return [bad]
    return bad


RANGED = [(p, t, m) for p, t, m in FIELDS if {"min", "max", "gt", "choices"} & set(m)]


@pytest.mark.parametrize("path,tp,meta", RANGED, ids=lambda x: ".".join(x) if isinstance(x, tuple) else "")
def test_an_out_of_range_value_is_named_with_the_range(path, tp, meta):
    value = out_of_range(tp, meta)
    msg = problems(path, value)
    assert ".".join(path) in msg and "expected" in msg, msg
