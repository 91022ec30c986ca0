"""Dataclass fields with an allowed range, for every config the settings check walks (rcdm_lib.settings).

    steps: int = at_least(1, 1000)          # the check says "rcdm.train.steps is 0; expected a number at least 1"
    ema_rate: float = between(0.0, 1.0, 0.9999)

The range lives in the field's metadata ("min", "max", "gt"), so the one check generated from the dataclasses
covers it; a new field with a range needs no new check code.
"""
from __future__ import annotations

import dataclasses
from dataclasses import field


def at_least(minimum, default=dataclasses.MISSING, **kw):
    """A field whose value (a number, when set) must be >= minimum."""
    return field(default=default, metadata={"min": minimum}, **kw)


def between(low, high, default=dataclasses.MISSING, **kw):
    """A field whose value (a number, when set) must lie in [low, high]."""
    return field(default=default, metadata={"min": low, "max": high}, **kw)


def above(bound, default=dataclasses.MISSING, **kw):
    """A field whose value (a number, when set) must be > bound."""
    return field(default=default, metadata={"gt": bound}, **kw)


def one_of(*choices, default=dataclasses.MISSING, **kw):
    """A field whose value (when set) must be one of `choices`."""
    return field(default=default, metadata={"choices": tuple(choices)}, **kw)
