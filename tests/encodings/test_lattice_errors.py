"""Bad settings and inputs for the dense grid, tri-plane and simplex grid raise InputError (or
the core's ValueError for hand-built layouts) with these exact messages."""

import pytest
import torch

from fields3d import _native
from fields3d.encodings import (
    DenseGrid,
    DenseGridConfig,
    SimplexGrid,
    TriPlane,
    create,
    dense_grid_encode,
)
from fields3d.errors import InputError


@pytest.mark.parametrize(
    "config,message",
    [
        ({"type": "dense_grid", "n_input_dims": 4}, "n_input_dims must be 2 or 3, got 4"),
        (
            {"type": "dense_grid", "n_features": 33},
            "n_features must be an integer from 1 to 32, got 33",
        ),
        ({"type": "dense_grid", "resolution": 1}, "resolution must be an integer >= 2, got 1"),
        (
            {"type": "dense_grid", "resolution": 1025},
            "resolution 1025 in 3D needs 1076890625 rows, more than 2^30; use a hash grid or tri-plane for finer grids",
        ),
        (
            {"type": "dense_grid", "interpolation": "cubic"},
            "interpolation must be 'linear' or 'smoothstep', got 'cubic'",
        ),
        (
            {"type": "triplane", "aggregate": "mean"},
            "aggregate must be 'sum', 'product' or 'concat', got 'mean'",
        ),
        (
            {"type": "triplane", "resolution": [64, 1]},
            "resolution must be an integer from 2 to 16384 or a list of 1 to 8 such integers, got [64, 1]",
        ),
        (
            {"type": "triplane", "resolution": "128"},
            "resolution must be an integer from 2 to 16384 or a list of 1 to 8 such integers, got '128'",
        ),
        (
            {"type": "triplane", "n_features": 0},
            "n_features must be an integer from 1 to 32, got 0",
        ),
        (
            {"type": "triplane", "n_input_dims": 3},
            None,
        ),  # not a tri-plane setting: the factory's message
        ({"type": "simplex_grid", "n_input_dims": 1}, "n_input_dims must be 2, 3 or 4, got 1"),
        (
            {"type": "simplex_grid", "n_features_per_level": 3},
            "n_features_per_level must be 1, 2, 4 or 8, got 3",
        ),
        (
            {"type": "simplex_grid", "n_levels": 33},
            "n_levels must be an integer from 1 to 32, got 33",
        ),
        (
            {"type": "simplex_grid", "log2_hashmap_size": 31},
            "log2_hashmap_size must be an integer from 4 to 30 (2^4 to 2^30 rows per level), got 31",
        ),
        (
            {"type": "simplex_grid", "n_levels": 32, "per_level_scale": 2.0},
            "the finest level's resolution (3.44e+10) exceeds 2^29; use fewer levels or a smaller per_level_scale",
        ),
    ],
)
def test_bad_settings(config, message):
    with pytest.raises(InputError) as err:
        create(config)
    if message is None:
        assert str(err.value).startswith("encoding type 'triplane' does not take 'n_input_dims'")
    else:
        assert str(err.value) == message


@pytest.mark.parametrize(
    "module,x,message",
    [
        (
            lambda: DenseGrid(2, 4, 2),
            torch.rand(5, 3),
            "positions must be float32 of shape (N, 2), got float32 (5, 3)",
        ),
        (
            lambda: TriPlane(4, 2),
            torch.rand(5, 3, dtype=torch.float64),
            "positions must be float32 of shape (N, 3), got float64 (5, 3)",
        ),
        (
            lambda: SimplexGrid(3, 2, 2, 6),
            [[0.1, 0.2, 0.3]],
            "positions must be float32 of shape (N, 3), got list",
        ),
        (
            lambda: DenseGrid(3, 4, 2),
            torch.rand(4, 3, device="meta"),
            "positions must be on cpu like the dense grid's parameters, got meta; move one of them with .to(device)",
        ),
        *[
            (
                module,
                torch.rand(4, 3).to_sparse(),
                "positions must be a dense (strided) tensor, got a sparse_coo tensor; convert it with .to_dense()",
            )
            for module in (
                lambda: DenseGrid(3, 4, 2),
                lambda: TriPlane(4, 2),
                lambda: SimplexGrid(3, 2, 2, 6),
            )
        ],
    ],
)
def test_bad_positions(module, x, message):
    with pytest.raises(InputError) as err:
        module()(x)
    assert str(err.value) == message


def test_params_of_the_wrong_shape():
    with pytest.raises(InputError) as err:
        dense_grid_encode(torch.rand(3, 3), torch.rand(10, 2), DenseGridConfig(3, 4, 2))
    assert str(err.value) == "params must have shape (64, 2) for this config, got (10, 2)"


LAYOUT = dict(
    kind="dense",
    n_dims=3,
    n_features=2,
    interpolation="linear",
    scales=[3.0],
    resolutions=[4],
    sizes=[64],
    hashed=[False],
    axes=[[0, 1]],
)


@pytest.mark.parametrize(
    "change,message",
    [
        (
            {"kind": "simplex", "n_dims": 5},
            "unsupported lattice kind 'simplex' with n_dims 5 (dense: 2 or 3, triplane: 3, simplex: 2 to 4)",
        ),
        ({"n_features": 40}, "n_features must be between 1 and 32, got 40"),
        ({"kind": "simplex", "n_features": 3}, "simplex n_features must be 1, 2, 4 or 8, got 3"),
        ({"sizes": [63]}, "a level that is not hashed needs at least resolution^dims rows"),
        (
            {"scales": [2.0]},
            "dense and tri-plane levels are not hashed and have scale resolution - 1",
        ),
        ({"axes": [[0, 0]]}, "axes must list two different input axes per level"),
        (
            {"hashed": [False, True]},
            "scales, resolutions, sizes, hashed and axes must have one entry per level",
        ),
        (
            {"kind": "simplex", "hashed": [True], "sizes": [60]},
            "hashed levels must hold a power-of-two number of rows",
        ),
        ({"kind": "simplex", "sizes": [0]}, "level sizes must be at least 1"),
        (
            {
                "kind": "simplex",
                "n_dims": 2,
                "scales": [40000.0],
                "resolutions": [70000],
                "sizes": [8],
            },
            "a simplex level that is not hashed needs resolution^dims below 2^32",
        ),
    ],
)
def test_core_layout_checks(change, message):
    with pytest.raises(ValueError) as err:
        _native.core().LatticeLayout(**(LAYOUT | change))
    assert str(err.value) == message


def test_core_checks_tensor_shapes_against_the_layout():
    layout = _native.core().LatticeLayout(**LAYOUT)
    c = _native.capsule
    x, table = torch.rand(5, 3), torch.rand(64, 2)
    with pytest.raises(ValueError) as err:
        _native.core().lattice_forward(layout, c(x), c(table), c(torch.empty(5, 3)))
    assert str(err.value) == "y must have shape (5, 2), got (5, 3)"


def test_layouts_without_a_row_lookup_refuse_one():
    c = _native.capsule
    x, table, y, lut = (
        torch.rand(5, 3),
        torch.rand(64, 2),
        torch.empty(5, 2),
        torch.zeros(4, dtype=torch.int64),
    )
    layout = _native.core().LatticeLayout(**LAYOUT)
    assert layout.n_lut == 0
    with pytest.raises(ValueError) as err:
        _native.core().lattice_forward(layout, c(x), c(table), c(y), lut=c(lut))
    assert str(err.value) == "this lattice encoding layout has no row lookup: pass lut=None"
    hash_layout = _native.core().LatticeLayout(**(LAYOUT | {"kind": "hash"}))
    with pytest.raises(ValueError) as err:
        _native.core().lattice_forward(hash_layout, c(x), c(table), c(y), lut=c(lut))
    assert str(err.value) == "this hash grid layout has no row lookup: pass lut=None"
