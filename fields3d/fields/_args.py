"""Argument checks the field modules share: sizes with an upper bound, devices, point tensors.

Each raises :class:`~fields3d.errors.InputError` (or :class:`~fields3d.errors.BackendUnavailable`
for a CUDA device this installation cannot use) with the exact message the tests assert.
"""

from __future__ import annotations

import torch

from .. import _native
from ..encodings._table_op import check_dense, dtype_str, shape_str
from ..errors import InputError

#: Hidden-layer width: a 4096 x 4096 float32 layer is 64 MB (and its Adam state twice that); the
#: widest MLPs in the papers these fields follow are 256-512, so past 4096 is a typing slip that
#: would otherwise fail in the allocator (n_hidden=10**9 asks for tens of GB).
MAX_WIDTH = 4096
#: Features in or out of an MLP (an encoding's output, a field's channels): a concat of encodings
#: can be wide, so more room than the hidden width; 2^16 x 4096 float32 weights are 1 GB.
MAX_FEATURES = 2**16
#: Hidden layers: these fields use 1-8; each is a Python-level module call per forward, and
#: 10**6 layers exhaust memory while being built.
MAX_HIDDEN_LAYERS = 16


def check_device(device) -> torch.device | None:
    """``device`` (None, a string, an index or a torch.device) as a ``torch.device``; a CUDA one
    must be usable by torch and by the compiled core (BackendUnavailable with the fix otherwise)."""
    if device is None:
        return None
    dev = _native.parse_device(device)
    if dev.type == "cuda":
        _native.require_torch_cuda(device)
        _native.check_device(dev)
    return dev


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
