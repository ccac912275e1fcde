"""The compiled core's own checks (the last line before memory is touched), threads and info."""

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.utils.dlpack import to_dlpack

import fields3d
from fields3d import _native
from fields3d.encodings import HashGridConfig, hash_grid_encode
from fields3d.encodings._lattice import layout

core = _native.core()
CONFIG = HashGridConfig(3, 2, 2, 6)
LAYOUT = layout(CONFIG)


def forward(x, table, y):
    core.lattice_forward(LAYOUT, x, table, y)


def test_binding_rejects_non_capsules():
    table = torch.zeros(CONFIG.n_entries, 2)
    with pytest.raises(
        ValueError,
        match=r"^x must be a DLPack capsule \(torch.utils.dlpack.to_dlpack\(t\)\), got Tensor$",
    ):
        forward(torch.rand(4, 3), to_dlpack(table), to_dlpack(torch.empty(4, 4)))


def test_binding_checks_shape_dtype_and_strides():
    table = to_dlpack(torch.zeros(CONFIG.n_entries, 2))
    with pytest.raises(ValueError, match=r"^x must have shape \(N, 3\), got \(4, 2\)$"):
        forward(to_dlpack(torch.rand(4, 2)), table, to_dlpack(torch.empty(4, 4)))
    with pytest.raises(ValueError, match=r"^y must have shape \(4, 4\), got \(4, 5\)$"):
        forward(to_dlpack(torch.rand(4, 3)), table, to_dlpack(torch.empty(4, 5)))
    with pytest.raises(ValueError, match=r"^x must be contiguous \(call .contiguous\(\) first\)$"):
        forward(to_dlpack(torch.rand(3, 4).t()), table, to_dlpack(torch.empty(4, 4)))
    with pytest.raises(
        ValueError, match=r"^x must be float32 or float64, got DLPack dtype code 0 with 64 bits$"
    ):
        forward(
            to_dlpack(torch.zeros(4, 3, dtype=torch.int64)), table, to_dlpack(torch.empty(4, 4))
        )
    with pytest.raises(
        ValueError, match=r"^table must have the dtype of x \(float64\), got float32$"
    ):
        forward(
            to_dlpack(torch.rand(4, 3, dtype=torch.float64)), table, to_dlpack(torch.empty(4, 4))
        )


def test_layout_checks():
    with pytest.raises(
        ValueError, match=r"^hashed levels must hold a power-of-two number of rows$"
    ):
        core.LatticeLayout("hash", 3, 2, "linear", [3.0], [4], [24], [True], [[0, 1]])
    with pytest.raises(ValueError, match=r"^n_features must be 1, 2, 4 or 8, got 3$"):
        core.LatticeLayout("hash", 3, 3, "linear", [3.0], [4], [64], [False], [[0, 1]])
    with pytest.raises(ValueError, match=r"^n_dims must be 1, 2, 3 or 4, got 5$"):
        core.LatticeLayout("hash", 5, 2, "linear", [3.0], [4], [64], [False], [[0, 1]])
    hash_1d = core.LatticeLayout(
        "hash", 1, 2, "linear", [3.0, 5.0], [4, 6], [64, 216], [False, False], [[0, 1]] * 2
    )
    assert hash_1d.offsets == [0, 64] and hash_1d.n_lut == 0


def test_results_do_not_depend_on_thread_count():
    # CPU table gradients are race-free: each level is owned by one task, summed in point order.
    config = HashGridConfig(3, 8, 2, 12, 4, 1.6)
    table = (torch.rand(config.n_entries, 2) * 2 - 1).requires_grad_()
    x = torch.rand(20000, 3, requires_grad=True)
    outputs = []
    before = core.num_threads()
    try:
        for threads in (1, 2, 3):
            core.set_num_threads(threads)
            y = hash_grid_encode(x, table, config)
            gx, gt = torch.autograd.grad((y * y).sum(), (x, table))
            outputs.append((y, gx, gt))
    finally:
        core.set_num_threads(before)
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other):
            assert torch.equal(a, b)


def run_python(code, **env):
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_thread_count_from_environment():
    assert (
        run_python(
            "from fields3d import _native; print(_native.core().num_threads())",
            FIELDS3D_NUM_THREADS="3",
        )
        == "3\n"
    )


def test_import_without_core_and_clear_error():
    code = (
        "import sys; sys.modules['fields3d._core'] = None\n"
        "import fields3d, torch\n"
        "from fields3d.encodings import HashGrid\n"
        "info = fields3d.info(); assert info['core'] is False, info\n"
        "try:\n"
        "    HashGrid(3, n_levels=2, log2_hashmap_size=6)(torch.rand(2, 3))\n"
        "except fields3d.BackendUnavailable as e:\n"
        "    print(e)\n"
    )
    out = run_python(code)
    assert out.startswith("the compiled core fields3d._core could not be loaded (")
    assert out.rstrip().endswith(
        "install the package with `pip install -e .` (it builds the C++ core), or run `make setup`"
    )


def test_info_reports_backends_and_versions():
    info = fields3d.info()
    assert info["core"] is True and info["backends"][0] == "cpu"
    assert info["fields3d"] == fields3d.__version__ == info["core_version"]
    assert info["torch"] == torch.__version__
    assert info["threads"] == core.num_threads() >= 1
    assert ("cuda" in info["backends"]) == bool(info["cuda_archs"])
    json.dumps(info)


def test_table_gradient_is_overwritten_not_accumulated():
    x, dy = torch.rand(50, 3), torch.rand(50, 4)
    table = torch.rand(CONFIG.n_entries, 2)
    fresh, dirty = torch.zeros_like(table), torch.full_like(table, 7.0)
    for out in (fresh, dirty):
        core.lattice_backward(
            LAYOUT, to_dlpack(x), to_dlpack(table), to_dlpack(dy), None, to_dlpack(out)
        )
    assert fresh.abs().sum() > 0
    assert torch.equal(fresh, dirty)


def test_double_backward_table_gradient_needs_ddx():
    x, dy = torch.rand(5, 3), torch.rand(5, 4)
    table = torch.rand(CONFIG.n_entries, 2)
    with pytest.raises(
        ValueError,
        match=r"^dtable needs ddx \(with ddx None the table gradient is zero: skip it\)$",
    ):
        core.lattice_backward_backward(
            LAYOUT,
            to_dlpack(x),
            to_dlpack(table),
            to_dlpack(dy),
            None,
            to_dlpack(table),
            None,
            None,
            to_dlpack(torch.empty_like(table)),
        )
