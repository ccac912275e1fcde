"""Test configuration: CUDA tests skip (saying why) where no GPU and CUDA build are present.

scripts/gpu-check sets FIELDS3D_REQUIRE_CUDA=1, which turns that skip into a failure, so a GPU
machine cannot silently pass the CUDA tests by skipping them.
"""

import os

import pytest
import torch


def _cuda_missing() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch (torch.cuda.is_available() is False); run scripts/gpu-check on a GPU machine"
    from fields3d import _native

    if not _native.core().build_info()["cuda"]:
        return "fields3d._core was built without CUDA; rebuild with FIELDS3D_CUDA=1"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _cuda_missing()
    if reason is None:
        return
    if os.environ.get("FIELDS3D_REQUIRE_CUDA") == "1":
        raise pytest.UsageError(f"FIELDS3D_REQUIRE_CUDA=1 but {reason}")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
