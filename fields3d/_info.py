"""What this installation can do: ``fields3d.info()`` and ``fields3d info``."""

from __future__ import annotations

import os
import platform

import torch

from . import __version__, _core_ops
from ._memory import keeps_freed_memory
from .errors import BackendUnavailable


def collect() -> dict:
    out = {
        "fields3d": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "platform": platform.platform(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }
    try:
        build = _core_ops.build_info()
    except BackendUnavailable as exc:
        out.update(core=False, core_error=str(exc), backends=[], threads=None)
        return out
    out.update(
        core=True,
        core_version=build["version"],
        backends=["cpu"] + (["cuda"] if build["cuda"] else []),
        cuda_archs=[a for a in build["cuda_archs"].split(",") if a],
        cuda_runtime=build["cuda_runtime"],
        cuda_devices_visible_to_core=_core_ops.cuda_device_count(),
        threads=_core_ops.num_threads(),
        threads_from_env=os.environ.get("FIELDS3D_NUM_THREADS"),
        keeps_freed_memory=keeps_freed_memory(),
        cxx_compiler=build["cxx_compiler"],
    )
    return out
