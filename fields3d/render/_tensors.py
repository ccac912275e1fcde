"""Ray-argument checks of the rendering ops (tensors per ray, with the rays' dtype and device),
built from the generic checks of :mod:`fields3d._checks`; each raises InputError with the exact
message."""

from __future__ import annotations

import torch

from .._checks import clamp_number, dtype_str, shape_str
from ..errors import InputError


def check_float(name: str, t, shape: tuple, like: torch.Tensor | None = None) -> None:
    """Raise InputError unless ``t`` is a float32/float64 tensor of ``shape`` (-1: any extent),
    with ``like``'s dtype and device when given."""
    want = (
        "("
        + ", ".join("N" if s == -1 else str(s) for s in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name} must be a float tensor of shape {want}, got {type(t).__name__}")
    if t.dtype not in (torch.float32, torch.float64):
        raise InputError(f"{name} must be float32 or float64, got {dtype_str(t.dtype)}")
    if t.dim() != len(shape) or any(s not in (-1, n) for s, n in zip(shape, t.shape)):
        raise InputError(f"{name} must have shape {want}, got {shape_str(t)}")
    if like is not None and t.dtype != like.dtype:
        raise InputError(
            f"{name} must have the dtype of the rays ({dtype_str(like.dtype)}), got {dtype_str(t.dtype)}"
        )
    if like is not None and t.device != like.device:
        raise InputError(
            f"{name} must be on {like.device} like the rays, got {t.device}; move it with .to(device)"
        )


def per_ray(name: str, value, like: torch.Tensor) -> torch.Tensor:
    """A number or an (R,) tensor as an (R,) tensor of like's dtype and device."""
    n = like.shape[0]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.full(
            (n,), clamp_number(value, like.dtype), dtype=like.dtype, device=like.device
        )
    check_float(name, value, (n,), like)
    return value.contiguous()
