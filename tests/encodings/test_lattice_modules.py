"""The lattice encodings as modules: registered names, config round trips, sizes and initial values."""

import json

import pytest
import torch

from fields3d.encodings import Concat, DenseGrid, HashGrid, SimplexGrid, TriPlane, available, create

CONFIGS = [
    {
        "type": "dense_grid",
        "n_input_dims": 2,
        "resolution": 16,
        "n_features": 3,
        "interpolation": "smoothstep",
    },
    {
        "type": "triplane",
        "resolution": [8, 16],
        "n_features": 4,
        "aggregate": "product",
        "interpolation": "linear",
    },
    {
        "type": "simplex_grid",
        "n_input_dims": 3,
        "n_levels": 4,
        "n_features_per_level": 2,
        "log2_hashmap_size": 10,
        "base_resolution": 4,
        "per_level_scale": 2.0,
    },
]


def test_registered_names():
    assert {"dense_grid", "triplane", "simplex_grid"} <= set(available())
    assert (DenseGrid.type_name, TriPlane.type_name, SimplexGrid.type_name) == (
        "dense_grid",
        "triplane",
        "simplex_grid",
    )


@pytest.mark.parametrize("config", CONFIGS, ids=[c["type"] for c in CONFIGS])
def test_config_round_trip_and_state_dict(config):
    enc = create(config)
    assert enc.config() == config
    assert json.loads(json.dumps(enc.config())) == config
    twin = create(enc.config())
    twin.load_state_dict(enc.state_dict())
    x = torch.rand(33, enc.n_input_dims)
    torch.testing.assert_close(twin(x), enc(x))
    assert enc(x).shape == (33, enc.n_output_dims)
    assert enc.n_params == enc.spec.n_params == enc.params.numel()


def test_sizes():
    assert DenseGrid(3, 32, 8).n_params == 32**3 * 8
    assert DenseGrid(2, 32, 8).n_output_dims == 8
    tri = TriPlane([32, 64], 8, "sum")
    assert (tri.n_params, tri.n_output_dims) == (3 * (32**2 + 64**2) * 8, 16)
    assert TriPlane(32, 8, "concat").n_output_dims == 24
    simplex, hashgrid = SimplexGrid(), HashGrid()
    assert simplex.n_output_dims == hashgrid.n_output_dims == 32
    # same hashed table size on the fine levels; the directly indexed coarse levels differ
    assert simplex.spec.levels[-1].size == hashgrid.spec.levels[-1].size == 2**19
    scale = 15 / 2 ** (1 / 3)  # the hash grid's 15, at the cubic lattice's vertex density
    assert simplex.spec.levels[0].scale == pytest.approx(scale)
    assert simplex.spec.levels[0].resolution == int(scale * 2.0) + 3  # floor(s * sqrt(d + 1)) + 3
    # the direct coarse level holds the vertices points reach (about 2 s^3 in 3D), not the
    # resolution^3 bounding box, four times as many
    first = simplex.spec.levels[0]
    assert (
        not first.hashed
        and 2 * scale**3 < first.size < 1.6 * 2 * scale**3 < first.resolution**3 / 2
    )


def test_initial_values():
    assert DenseGrid(3, 8, 4).params.abs().max() <= 1e-4
    product = TriPlane(8, 4, "product").params
    assert product.min() >= 0.1 and product.max() <= 0.5
    assert TriPlane(8, 4, "sum").params.abs().max() <= 1e-4


def test_hybrid_concat_of_a_triplane_and_a_dense_grid():
    both = create(
        {
            "type": "concat",
            "encodings": [
                {"type": "triplane", "resolution": 16, "n_features": 4},
                {"type": "dense_grid", "resolution": 8, "n_features": 2},
            ],
        }
    )
    assert isinstance(both, Concat) and both.n_output_dims == 6
    assert both(torch.rand(10, 3)).shape == (10, 6)
