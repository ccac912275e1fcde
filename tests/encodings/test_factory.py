"""create(config) builds registered encodings from dicts; bad dicts raise InputError with these messages."""

import json

import pytest
import torch

from fields3d.encodings import Concat, Encoding, HashGrid, available, create, factory, register
from fields3d.errors import InputError

SMALL = {
    "type": "hash_grid",
    "n_levels": 3,
    "log2_hashmap_size": 10,
    "base_resolution": 4,
    "per_level_scale": 2.0,
}
HASH_GRID_KEYS = "n_input_dims, n_levels, n_features_per_level, log2_hashmap_size, base_resolution, per_level_scale, interpolation"


def known() -> str:
    return ", ".join(available())


def test_available_lists_the_registered_types_sorted():
    assert {"concat", "hash_grid"} <= set(available())
    assert list(available()) == sorted(available())
    assert HashGrid.type_name == "hash_grid" and Concat.type_name == "concat"
    assert (
        create(SMALL).type(torch.float64).params.dtype == torch.float64
    )  # nn.Module.type is not shadowed


def test_create_hash_grid_takes_the_constructor_settings():
    grid = create(SMALL)
    assert isinstance(grid, HashGrid) and isinstance(grid, Encoding)
    assert (grid.n_input_dims, grid.n_output_dims) == (3, 6)
    assert grid.config() == {
        "type": "hash_grid",
        "n_input_dims": 3,
        "n_levels": 3,
        "n_features_per_level": 2,
        "log2_hashmap_size": 10,
        "base_resolution": 4,
        "per_level_scale": 2.0,
        "interpolation": "linear",
    }
    assert grid.n_params == grid.spec.n_params == grid.params.numel()
    assert SMALL["type"] == "hash_grid" and len(SMALL) == 5  # the argument is left alone


def test_create_fills_defaults_and_places_parameters_on_the_device():
    grid = create(
        {"type": "hash_grid", "n_input_dims": 2, "n_levels": 1, "log2_hashmap_size": 8},
        device="meta",
    )
    assert grid.params.device.type == "meta"
    assert grid.config() == HashGrid(2, 1, log2_hashmap_size=8, device="meta").config()


def test_round_trip_through_json_and_state_dict():
    grid = create(dict(SMALL, n_input_dims=2, n_features_per_level=4, interpolation="smoothstep"))
    with torch.no_grad():
        grid.params.normal_()
    again = create(json.loads(json.dumps(grid.config())))
    assert again.config() == grid.config()
    again.load_state_dict(grid.state_dict())
    x = torch.rand(100, 2)
    assert torch.equal(again(x), grid(x))
    assert again(x).shape == (100, grid.n_output_dims)


def test_concat_round_trip():
    enc = create(
        {"type": "concat", "encodings": [SMALL, dict(SMALL, n_levels=2, n_features_per_level=1)]}
    )
    assert isinstance(enc, Concat) and enc.n_output_dims == 6 + 2
    with torch.no_grad():
        for p in enc.parameters():
            p.normal_()
    again = create(json.loads(json.dumps(enc.config())))
    assert again.config() == enc.config()
    again.load_state_dict(enc.state_dict())
    x = torch.rand(50, 3)
    assert torch.equal(again(x), enc(x))


@pytest.mark.parametrize(
    "config,message",
    [
        ([SMALL], 'an encoding config must be a dict with a "type" key, got list'),
        ("hash_grid", 'an encoding config must be a dict with a "type" key, got str'),
        (None, 'an encoding config must be a dict with a "type" key, got NoneType'),
        ({}, 'an encoding config needs a "type" key (one of: {known}), got keys []'),
        (
            {"n_levels": 4},
            "an encoding config needs a \"type\" key (one of: {known}), got keys ['n_levels']",
        ),
        ({"type": "hashgrid"}, "unknown encoding type 'hashgrid'; known types: {known}"),
        ({"type": 3}, "unknown encoding type 3; known types: {known}"),
        ({"type": None}, "unknown encoding type None; known types: {known}"),
        (
            {"type": "hash_grid", "n_level": 4, "device": "cpu"},
            f"encoding type 'hash_grid' does not take 'n_level', 'device'; its settings are: {HASH_GRID_KEYS}",
        ),
        ({"type": "concat"}, "encoding type 'concat' needs 'encodings'"),
        (
            {"type": "concat", "encodings": [], "x": 1},
            "encoding type 'concat' does not take 'x'; its settings are: encodings",
        ),
        ({"type": "hash_grid", "n_levels": 0}, "n_levels must be an integer from 1 to 32, got 0"),
        ({"type": "hash_grid", "n_input_dims": 5}, "n_input_dims must be 1, 2, 3 or 4, got 5"),
        ({"type": "hash_grid", "n_input_dims": 2.0}, "n_input_dims must be 1, 2, 3 or 4, got 2.0"),
        ({"type": "simplex_grid", "n_input_dims": 3.0}, "n_input_dims must be 2, 3 or 4, got 3.0"),
        ({"type": "dense_grid", "n_input_dims": True}, "n_input_dims must be 2 or 3, got True"),
        (
            {"type": "hash_grid", "interpolation": "cubic"},
            "interpolation must be 'linear' or 'smoothstep', got 'cubic'",
        ),
        (
            {"type": "hash_grid", "per_level_scale": "2"},
            "per_level_scale must be a number from 1 to 16, got '2'",
        ),
    ],
)
def test_bad_configs(config, message):
    with pytest.raises(InputError) as err:
        create(config)
    assert str(err.value) == message.format(known=known())


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so test registrations do not leak."""
    monkeypatch.setattr(factory, "_REGISTRY", dict(factory._REGISTRY))


def test_register_one_line(registry):
    @register("scaled_identity")
    class ScaledIdentity(Encoding):
        def __init__(self, n_input_dims: int, scale: float = 1.0, *, device=None):
            super().__init__()
            self.n_input_dims = self.n_output_dims = n_input_dims
            self.weight = torch.nn.Parameter(
                torch.full((n_input_dims,), float(scale), device=device)
            )

        def forward(self, x):
            return x * self.weight

        def config(self):
            return {
                "type": self.type_name,
                "n_input_dims": self.n_input_dims,
                "scale": self.weight[0].item(),
            }

    assert "scaled_identity" in available() and ScaledIdentity.type_name == "scaled_identity"
    enc = create({"type": "scaled_identity", "n_input_dims": 2, "scale": 3.0})
    assert enc.config() == {"type": "scaled_identity", "n_input_dims": 2, "scale": 3.0}
    assert enc.n_params == 2
    assert torch.equal(enc(torch.ones(4, 2)), torch.full((4, 2), 3.0))
    with pytest.raises(InputError) as err:
        create({"type": "scaled_identity", "scale": 2.0})
    assert str(err.value) == "encoding type 'scaled_identity' needs 'n_input_dims'"
    # and it composes with the others by name
    both = create({"type": "concat", "encodings": [enc.config(), dict(SMALL, n_input_dims=2)]})
    assert both.n_output_dims == 2 + 6


def test_register_errors(registry):
    with pytest.raises(InputError) as err:
        register("hash grid")
    assert (
        str(err.value)
        == "an encoding type name must be an identifier like 'hash_grid', got 'hash grid'"
    )
    with pytest.raises(InputError) as err:
        register("linear")(torch.nn.Linear)
    assert (
        str(err.value)
        == "register('linear') decorates Encoding subclasses, got <class 'torch.nn.modules.linear.Linear'>"
    )

    class Other(Encoding):
        pass

    with pytest.raises(InputError) as err:
        register("hash_grid")(Other)
    assert str(err.value) == "encoding type 'hash_grid' is already registered to HashGrid"
    assert create(SMALL).type_name == "hash_grid"


def nested(depth: int) -> dict:
    """SMALL inside depth - 1 single-part concats: a config ``depth`` levels deep."""
    config = SMALL
    for _ in range(depth - 1):
        config = {"type": "concat", "encodings": [config]}
    return config


DEPTH_ERROR = (
    "encodings[0]: "
    * 16
    + 'encoding configs nest at most 16 levels deep (each "concat" adds one), '
    'got a deeper one; list the parts in one "concat" instead of nesting them'
)


def test_config_nesting_is_bounded():
    enc = create(nested(factory.MAX_CONFIG_DEPTH))
    assert enc.nesting_depth == 16 and create(enc.config()).config() == enc.config()
    for depth in (17, 2000):  # 2000: past Python's recursion limit, refused on the way down
        with pytest.raises(InputError) as err:
            create(nested(depth))
        assert str(err.value) == DEPTH_ERROR
    assert create(SMALL).nesting_depth == 1  # the bound leaves no depth behind for the next call
