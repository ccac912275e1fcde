"""Argument checks every layer shares: names, numbers, integers, choices, colours, tensor shapes,
dtypes and layouts, devices. Each raises :class:`~fields3d.errors.InputError` (or
:class:`~fields3d.errors.BackendUnavailable` for a device this installation cannot use) with the
exact message the tests assert.

Checks that belong to one op (an encoding's positions and table, a renderer's rays) stay beside
that op and are built from these.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from . import _native
from .errors import BackendUnavailable, InputError


def is_int(v) -> bool:
    """True for ints but not bools."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    """True for ints and floats but not bools."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: The most points a call samples or a step batches: sizes past these are typing slips, and would
#: otherwise fail deep in an allocator (2.4 GB of float64 points; 2^24 rows of activations a step).
MAX_POINTS = 10**8
MAX_BATCH = 2**24
#: Marching-cubes grid points per axis: 2048^3 float32 values are 34 GB already.
MAX_GRID = 2048

#: The largest seed every generator we seed accepts (torch's take at most 2^64 - 1, as signed 64-bit).
MAX_SEED = 2**63 - 1


# ---- numbers and choices ---------------------------------------------------------------------


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> None:
    """Raise ``InputError("<name> must be an integer >= <minimum>, got <value!r>")`` unless it is one;
    with ``maximum``, the message reads "from <minimum> to <maximum>"."""
    if maximum is None:
        if not is_int(value) or value < minimum:
            raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    elif not is_int(value) or not minimum <= value <= maximum:
        raise InputError(f"{name} must be an integer from {minimum} to {maximum}, got {value!r}")


def check_size(name: str, value, minimum: int, maximum: int) -> None:
    """:func:`check_int` with a maximum, keeping the ``>= minimum`` message for non-integers and
    values below ``minimum`` (as before the maximum was added); ``from minimum to maximum`` past it."""
    check_int(name, value, minimum)
    check_int(name, value, minimum, maximum)


def check_seed(value, name: str = "seed") -> None:
    """A random seed: an integer from 0 to :data:`MAX_SEED`."""
    check_int(name, value, 0, MAX_SEED)


def check_interval(name: str, value, lo: float, hi: float) -> None:
    """Raise ``InputError("<name> must be two numbers [low, high] from <lo> to <hi>, got ...")``
    unless ``value`` is a pair ``low <= high`` within ``[lo, hi]`` (a camera radius range, a field
    of view range)."""
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(is_number(v) and lo <= v <= hi for v in value)
        and value[0] <= value[1]
    ):
        raise InputError(
            f"{name} must be two numbers [low, high] from {lo:g} to {hi:g}, got {value!r}"
        )


def check_choice(name: str, value, choices: tuple) -> None:
    """Raise ``InputError("<name> must be a, b or c, got <value!r>")`` unless value is a choice."""
    integral = all(isinstance(c, int) for c in choices)  # then 2.0 is no choice, though 2.0 == 2
    if (
        value not in choices
        or isinstance(value, bool)
        or (integral and not isinstance(value, numbers.Integral))
    ):
        listed = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in choices[:-1])
        last = repr(choices[-1]) if isinstance(choices[-1], str) else str(choices[-1])
        raise InputError(f"{name} must be {listed} or {last}, got {value!r}")


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


# ---- tensors ---------------------------------------------------------------------------------


def shape_str(t) -> str:
    """A tensor's (or array's, or a shape's own) shape as messages write it: ``(2, 3)``; ``(5,)``."""
    shape = tuple(getattr(t, "shape", t))
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def dtype_str(dtype: torch.dtype) -> str:
    """``float32`` for ``torch.float32``."""
    return str(dtype).removeprefix("torch.")


def to_numpy(x) -> np.ndarray:
    """``x`` (a tensor on any device, an array, a sequence) as a numpy array, without a copy where
    none is needed."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check_dense(name: str, t: torch.Tensor) -> None:
    """Raise InputError unless tensor ``t`` has the strided (dense) layout every core op reads."""
    if t.layout != torch.strided:
        layout = str(t.layout).removeprefix("torch.")
        raise InputError(
            f"{name} must be a dense (strided) tensor, got a {layout} tensor; convert it with .to_dense()"
        )


def check_points(
    name: str,
    x,
    want: str,
    *,
    dtype: torch.dtype | None,
    device: torch.device,
    owner: str,
    rows: int | None = None,
) -> None:
    """Raise InputError unless ``x`` is a dense ``(N, 3)`` tensor (``(rows, 3)`` when given) of
    ``dtype`` (any floating dtype when None) on ``device``. ``want`` describes the tensor wanted
    (``"float32 of shape (N, 3)"``); ``owner`` names whose parameters fix the device."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be {want}, got {type(x).__name__}")
    check_dense(name, x)
    dtype_ok = x.dtype == dtype if dtype is not None else x.is_floating_point()
    if not dtype_ok or x.dim() != 2 or x.shape[1] != 3 or (rows is not None and x.shape[0] != rows):
        raise InputError(f"{name} must be {want}, got {dtype_str(x.dtype)} {shape_str(x)}")
    if x.device != device:
        raise InputError(
            f"{name} must be on {device} like the {owner}, got {x.device}; "
            "move one of them with .to(device)"
        )


# ---- devices ---------------------------------------------------------------------------------
# parse_device reads a device argument, require_torch_cuda asks torch for a GPU, check_device does
# both for a module's parameters and adds the compiled core's own check
# (fields3d._native.check_backend: can the core run kernels there).


def parse_device(device, *, cpu_or_cuda: bool = False) -> torch.device:
    """``torch.device(device)`` (a string, an index or a torch.device); InputError saying what is
    accepted, and with ``cpu_or_cuda`` also for other kinds of device (meta, ...)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or (cpu_or_cuda and dev.type not in ("cpu", "cuda")):
        kinds = " of either" if cpu_or_cuda else ""
        raise InputError(
            f"device must be 'cpu', 'cuda', 'cuda:<n>' or a torch.device{kinds}, got {device!r}"
        )
    return dev


def require_torch_cuda(device) -> None:
    """BackendUnavailable unless torch sees a CUDA device (``device``: what the caller asked for)."""
    if not torch.cuda.is_available():
        raise BackendUnavailable(
            f"device {device!r} was requested but torch {torch.__version__} sees no CUDA device; "
            "install a CUDA build of torch on a machine with a GPU, or use device 'cpu'"
        )


def check_device(device) -> torch.device | None:
    """A module's ``device`` argument (None, a string, an index or a torch.device) as a
    ``torch.device``; a CUDA one must be usable by torch and by the compiled core
    (BackendUnavailable with the fix otherwise)."""
    if device is None:
        return None
    dev = parse_device(device)
    if dev.type == "cuda":
        require_torch_cuda(device)
        _native.check_backend(dev)
    return dev
