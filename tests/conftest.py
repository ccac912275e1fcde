"""Test configuration: CUDA tests skip (saying why) where no GPU and CUDA build are present.

scripts/gpu-check sets FIELDS3D_REQUIRE_CUDA=1, which turns that skip into a failure, so a GPU
machine cannot silently pass the CUDA tests by skipping them.

CUDA parity tests take the ``twin`` fixture and run twice: against a real GPU (marked ``cuda``),
and against the CUDA launchers emulated on the host by the test module fields3d._core_emu
(``make setup`` builds it), so machines without a GPU still run every launcher.
"""

import contextlib
import importlib
import os

import pytest
import torch

EMU_MISSING = (
    "fields3d._core_emu (the CUDA launchers emulated on the host) is not built; "
    "install with FIELDS3D_CUDA_EMU=1, as `make setup` does"
)


@contextlib.contextmanager
def emulated_core():
    """Every core call in the block goes to fields3d._core_emu: tensors stay on the CPU, the core
    takes them for CUDA device 0 and runs its CUDA launchers on the host. torch fills new tensors
    with NaN (or the largest integer) meanwhile, so an output a kernel fails to write shows, where
    a reused allocation might otherwise still hold the CPU run's values. On leaving, checks that
    the launchers freed all their scratch memory."""
    import fields3d
    from fields3d import _native
    from fields3d.encodings import _lattice

    emu = importlib.import_module("fields3d._core_emu")
    real = _native.core()
    caches = (_native.core, _lattice.layout)  # these hold objects of one module
    for c in caches:
        c.cache_clear()
    fields3d._core = emu
    deterministic, fill = (
        torch.are_deterministic_algorithms_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)  # fill_uninitialized_memory needs it
    torch.utils.deterministic.fill_uninitialized_memory = True
    try:
        yield emu
    finally:
        fields3d._core = real
        torch.use_deterministic_algorithms(deterministic)
        torch.utils.deterministic.fill_uninitialized_memory = fill
        for c in caches:
            c.cache_clear()
    assert emu.emulator.live_allocations() == 0, (
        "an emulated CUDA launcher did not free its scratch memory"
    )


class Twin:
    """The second side of a CUDA parity test. ``cuda``: a GPU, tensors moved there. ``emulated``:
    tensors stay on the CPU and the core's CUDA launchers run on the host (``emulated_core``)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.device = "cuda" if kind == "cuda" else "cpu"

    def put(self, t):
        return t.to(self.device)

    def active(self):
        return emulated_core() if self.kind == "emulated" else contextlib.nullcontext()


def emulated_module():
    """fields3d._core_emu, or a skip saying how to build it."""
    try:
        return importlib.import_module("fields3d._core_emu")
    except ImportError:
        pytest.skip(EMU_MISSING)


@pytest.fixture(params=[pytest.param("cuda", marks=pytest.mark.cuda), "emulated"])
def twin(request):
    if request.param == "emulated":
        emulated_module()
    return Twin(request.param)


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
