"""Argument checks shared by the rendering ops; each raises InputError with the exact message."""

from __future__ import annotations

import math

import torch

from .. import _native
from .._checks import is_number
from ..errors import InputError


def shape_str(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ("," if t.dim() == 1 else "") + ")"


def dtype_str(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


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


def check_backend(t: torch.Tensor) -> None:
    """Raise BackendUnavailable unless the core runs on t's device."""
    _native.check_device(t.device)


def as_real(value) -> float | None:
    """A number (not a bool) as a float, ints past float range as +-inf; None for anything else."""
    if not is_number(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def clamp_number(value, dtype: torch.dtype) -> float:
    """A number as a float of ``dtype``'s range: values past it (ints past any float too) become
    +-inf, which they equal as distances along a ray of that dtype."""
    v = as_real(value)
    return math.copysign(math.inf, v) if abs(v) > torch.finfo(dtype).max else v


def per_ray(name: str, value, like: torch.Tensor) -> torch.Tensor:
    """A number or an (R,) tensor as an (R,) tensor of like's dtype and device."""
    n = like.shape[0]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.full(
            (n,), clamp_number(value, like.dtype), dtype=like.dtype, device=like.device
        )
    check_float(name, value, (n,), like)
    return value.contiguous()


def rgb_triple(name: str, value) -> tuple[float, float, float]:
    """A colour given as a number (grey), three numbers or a ``(3,)`` tensor, each in ``[0, 1]``."""
    if isinstance(value, torch.Tensor) and value.shape in ((), (3,)) and value.is_floating_point():
        value = value.tolist()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 3
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in value
        )
    )
    if not ok:
        raise InputError(
            f"{name} must be a number or three numbers in [0, 1] (a list or a (3,) tensor), got {value!r}"
        )
    return tuple(float(v) for v in value)
