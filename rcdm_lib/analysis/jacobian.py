"""Rows of an encoder's Jacobian, shown as images (paper Fig. 8, 10).

Row i of the Jacobian of h = f(x) at an image x is dh_i/dx, an array of the image's shape:
which pixels, in which colour direction, move the i-th dimension of the representation.

    rows = jacobian_rows(encoder, image, dims=[3, 17, 42])   # [3, C, H, W]
    show = normalise_rows(rows)                              # [3, C, H, W] in [-1, 1], 0 -> grey

The rows are vector-Jacobian products of a batch that repeats the image once per chosen
dimension, so K rows cost one forward and one backward pass. That needs each image's output
to depend on that image alone, which holds with BatchNorm in eval mode; the encoder is run in
eval mode here (and restored after).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from rcdm_lib.analysis.inversion import eval_mode

NORMALISATIONS = ("signed", "magnitude")


def jacobian_rows(encoder: nn.Module, image: torch.Tensor, dims, device: str | torch.device | None = None,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    """dh_i/dx for i in `dims` at one image [C, H, W] (or [1, C, H, W]) -> [K, C, H, W] on the CPU.

    device and dtype default to the image's; the encoder must already live on that device and
    dtype (float64 for checks against finite differences).
    """
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"jacobian_rows takes one image [C, H, W] or [1, C, H, W]; got shape {tuple(image.shape)}")
        image = image[0]
    if image.ndim != 3:
        raise ValueError(f"jacobian_rows takes one image [C, H, W] or [1, C, H, W]; got shape {tuple(image.shape)}")
    dims = torch.as_tensor(list(dims), dtype=torch.long)
    if dims.ndim != 1 or dims.numel() == 0:
        raise ValueError(f"dims must be a non-empty list of output dimensions; got {dims.tolist()}")
    device = torch.device(device) if device is not None else image.device
    dtype = dtype or image.dtype
    x = image.to(device=device, dtype=dtype).unsqueeze(0).repeat(len(dims), 1, 1, 1).requires_grad_(True)  # [K, C, H, W]
    with eval_mode(encoder):
        h = encoder(x)                                                      # [K, D]
    if h.ndim != 2:
        raise ValueError(f"the encoder returns shape {tuple(h.shape)}; expected representations [N, D]")
    if int(dims.min()) < 0 or int(dims.max()) >= h.shape[1]:
        raise ValueError(f"dims must lie in [0, {h.shape[1]}) for this {h.shape[1]}-d representation; got {dims.tolist()}")
    picked = h.gather(1, dims.to(device).unsqueeze(1)).sum()               # sum_k h_k[dims[k]]
    (rows,) = torch.autograd.grad(picked, x)
    return rows.detach().cpu()


def top_dims(h: torch.Tensor, k: int) -> list[int]:
    """The k dimensions of one representation [D] (or [1, D]) with the largest absolute value."""
    h = h.reshape(-1)
    if not 1 <= k <= h.numel():
        raise ValueError(f"k must be between 1 and the representation size {h.numel()}; got {k}")
    return h.abs().topk(k).indices.tolist()


def normalise_rows(rows: torch.Tensor, mode: str = "signed") -> torch.Tensor:
    """Jacobian rows [K, C, H, W] -> images [K, C, H, W] in [-1, 1] for display, each row on its own scale.

    "signed": divided by the row's largest absolute entry, so 0 is mid-grey and the sign of
    each colour channel shows; "magnitude": the per-pixel norm over channels, scaled to the
    row's maximum, as a grey image from black (no effect) to white (largest effect).
    """
    if rows.ndim != 4:
        raise ValueError(f"rows must be [K, C, H, W]; got shape {tuple(rows.shape)}")
    rows = rows.float()
    if mode == "signed":
        scale = rows.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
        return rows / scale
    if mode == "magnitude":
        m = rows.norm(dim=1, keepdim=True)                                   # [K, 1, H, W]
        m = m / m.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
        return (m * 2 - 1).expand(-1, rows.shape[1], -1, -1).contiguous()
    raise ValueError(f"unknown normalisation {mode!r}; expected one of {NORMALISATIONS}")
