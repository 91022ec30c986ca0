"""Conditioning slots: one representation vector made of named, concatenated slots.

A slot model's `ssl_emb` is one Linear over the concatenation of one slot per
representation (e.g. `supervised`, `simclr_backbone`, `dino_head`). An example fills
the slot of its representation and leaves the others zero; the all-zero vector is the
null condition (unconditional model, classifier-free guidance). A single-representation
model is the one-slot case, which is exactly the official layout.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SlotLayout:
    """Ordered (name, dim) pairs; the conditioning vector is their concatenation."""

    slots: tuple[tuple[str, int], ...]

    def __post_init__(self):
        names = [n for n, _ in self.slots]
        if len(set(names)) != len(names):
            raise ValueError(f"slot names must be unique, got {names}")
        for name, dim in self.slots:
            if int(dim) <= 0:
                raise ValueError(f"slot {name!r} must have a positive dim, got {dim}")

    @classmethod
    def from_any(cls, slots) -> "SlotLayout":
        """Accept a SlotLayout, a dict name->dim, or a sequence of (name, dim) pairs."""
        if isinstance(slots, SlotLayout):
            return slots
        if isinstance(slots, dict):
            slots = list(slots.items())
        return cls(tuple((str(n), int(d)) for n, d in slots))

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.slots]

    @property
    def dim(self) -> int:
        return sum(d for _, d in self.slots)

    def offset(self, name: str) -> tuple[int, int]:
        """[start, end) of slot `name` in the concatenated vector."""
        start = 0
        for n, d in self.slots:
            if n == name:
                return start, start + d
            start += d
        raise KeyError(f"unknown slot {name!r}; this layout has {self.names}")

    def null(self, n: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """The null condition: zeros [N, D]."""
        return torch.zeros(n, self.dim, device=device, dtype=dtype)

    def fill(self, name: str, h: torch.Tensor) -> torch.Tensor:
        """Place representation h [N, d_slot] into slot `name`; other slots zero. -> [N, D]."""
        start, end = self.offset(name)
        if h.dim() != 2 or h.shape[1] != end - start:
            raise ValueError(
                f"slot {name!r} expects a representation of shape [N, {end - start}], got {list(h.shape)}"
            )
        out = self.null(h.shape[0], device=h.device, dtype=h.dtype)
        out[:, start:end] = h
        return out

    def take(self, name: str, v: torch.Tensor) -> torch.Tensor:
        """Read slot `name` out of a conditioning vector v [N, D] -> [N, d_slot]."""
        start, end = self.offset(name)
        return v[:, start:end]
