"""Crossing into the compiled core ``fields3d._core`` (called through :mod:`fields3d._core_ops`,
which loads it on first use, never at import time).

The core takes tensors as DLPack capsules and CUDA work on an explicit stream; this module turns
torch tensors into those and picks the backend for a device, raising BackendUnavailable with the
fix when the build or the machine cannot serve it.
"""

from __future__ import annotations

import torch
from torch.utils import dlpack

from . import _core_ops
from ._core_ops import core as core  # the loader, where callers and tests have always found it
from .errors import BackendUnavailable

REBUILD_CUDA = (
    "reinstall on a machine with nvcc and a GPU: "
    "FIELDS3D_CUDA=1 pip install --no-build-isolation --no-deps -e ."
)


def check_backend(device: torch.device) -> None:
    """Raise BackendUnavailable unless the core can run kernels on ``device`` (a torch.device;
    :func:`fields3d._checks.check_device` reads a device argument)."""
    if device.type == "cpu":
        core()
        return
    if device.type != "cuda":
        raise BackendUnavailable(f"fields3d kernels run on cpu or cuda devices, got {device.type}")
    if not _core_ops.build_info()["cuda"]:
        raise BackendUnavailable(
            f"fields3d was built without CUDA, so it cannot run on {device}; {REBUILD_CUDA}"
        )
    if _core_ops.cuda_device_count() == 0:
        raise BackendUnavailable(
            f"fields3d was built with CUDA but sees no CUDA device for {device}; check the driver (nvidia-smi)"
        )


def capsule(t: torch.Tensor | None):
    """A DLPack capsule for ``t`` (None stays None). The tensor must outlive the call."""
    if t is None:
        return None
    return dlpack.to_dlpack(t.detach())


def stream_of(device: torch.device) -> int:
    """Handle of torch's current CUDA stream on ``device`` (0 for the CPU)."""
    if device.type != "cuda":
        return 0
    return torch.cuda.current_stream(device).cuda_stream
