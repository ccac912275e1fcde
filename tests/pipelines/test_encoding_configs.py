"""Encoding configs in pipelines: n_input_dims filled in, probes without memory, mismatch messages."""

from __future__ import annotations

import pytest
import torch

from fields3d.encodings import Encoding, available, create
from fields3d.errors import InputError
from fields3d.pipelines import _encoding
from fields3d.pipelines._encoding import fill_input_dims, probe, resolve, types_for_dims

GRID = {"type": "hash_grid", "n_levels": 2, "log2_hashmap_size": 8}


def test_fill_input_dims_where_the_type_takes_it():
    assert fill_input_dims(GRID, 2) == {**GRID, "n_input_dims": 2}
    assert fill_input_dims({**GRID, "n_input_dims": 3}, 2)["n_input_dims"] == 3  # given: left alone
    nested = fill_input_dims({"type": "concat", "encodings": [GRID, {**GRID, "n_levels": 1}]}, 2)
    assert "n_input_dims" not in nested and [e["n_input_dims"] for e in nested["encodings"]] == [
        2,
        2,
    ]
    assert GRID == {"type": "hash_grid", "n_levels": 2, "log2_hashmap_size": 8}  # not modified
    assert fill_input_dims("hash_grid", 2) == "hash_grid" and fill_input_dims(
        {"n_levels": 2}, 2
    ) == {"n_levels": 2}


def test_probe_allocates_nothing():
    enc = probe({"type": "hash_grid", "n_input_dims": 3, "log2_hashmap_size": 24})
    assert (
        enc.params.device.type == "meta"
        and enc.n_params
        == create(
            {"type": "hash_grid", "n_input_dims": 3, "log2_hashmap_size": 24}, device="meta"
        ).n_params
    )


def test_resolve_returns_the_complete_config():
    config, enc = resolve(GRID, 2, "fit-image")
    assert config == {
        **GRID,
        "n_input_dims": 2,
        "n_features_per_level": 2,
        "base_resolution": 16,
        "per_level_scale": 1.5,
        "interpolation": "linear",
    }
    assert enc.n_input_dims == 2 and enc.n_output_dims == 4
    concat, _ = resolve({"type": "concat", "encodings": [GRID, GRID]}, 3, "fit-sdf")
    assert [e["n_input_dims"] for e in concat["encodings"]] == [3, 3]


def test_types_for_dims_skips_composites():
    assert "hash_grid" in types_for_dims(2) and "hash_grid" in types_for_dims(3)
    assert "concat" not in types_for_dims(3) and "concat" in available()


def test_a_type_set_to_other_dims():
    with pytest.raises(InputError) as info:
        resolve({**GRID, "n_input_dims": 3}, 2, "fit-image")
    assert str(info.value) == (
        "the hash_grid encoding is set to n_input_dims=3; fit-image needs n_input_dims=2 (leave it out to get 2)"
    )


class _Planes(Encoding):
    """A stand-in for a 3D-only encoding (no n_input_dims setting), never registered."""

    type_name = "planes3d"

    def __init__(self, resolution: int = 4, *, device=None):
        super().__init__()
        self.n_input_dims, self.n_output_dims, self.resolution = 3, 2, resolution
        self.table = torch.nn.Parameter(torch.zeros(3, resolution, resolution, 2, device=device))

    def config(self) -> dict:
        return {"type": "planes3d", "resolution": self.resolution}


def test_a_3d_only_type_in_a_2d_pipeline(monkeypatch):
    def fake_create(config, device=None):
        return (
            _Planes(**{k: v for k, v in config.items() if k != "type"}, device=device)
            if config.get("type") == "planes3d"
            else create(config, device=device)
        )

    monkeypatch.setattr(_encoding, "create", fake_create)
    monkeypatch.setattr(_encoding, "available", lambda: ("hash_grid", "planes3d"))
    with pytest.raises(InputError) as info:
        resolve({"type": "planes3d"}, 2, "fit-image")
    assert str(info.value) == (
        "the planes3d encoding takes 3D positions; fit-image needs a 2D encoding such as hash_grid"
    )
    config, enc = resolve({"type": "planes3d", "resolution": 8}, 3, "fit-sdf")
    assert config == {"type": "planes3d", "resolution": 8} and enc.table.device.type == "meta"


def test_bad_configs_carry_the_factory_message():
    with pytest.raises(InputError) as info:
        resolve({"type": "hashgrid"}, 2, "fit-image")
    assert (
        str(info.value)
        == f"unknown encoding type 'hashgrid'; known types: {', '.join(available())}"
    )
    with pytest.raises(InputError, match=r"^n_levels must be an integer from 1 to 32, got 0$"):
        resolve({**GRID, "n_levels": 0}, 2, "fit-image")


def test_a_part_set_to_other_dims_is_named():
    # it read "the concat encoding takes 3D positions; fit-image needs a 2D encoding such as dense_grid, ..."
    with pytest.raises(InputError) as info:
        resolve({"type": "concat", "encodings": [{**GRID, "n_input_dims": 3}]}, 2, "fit-image")
    assert str(info.value) == (
        "the hash_grid encoding in concat's encodings[0] is set to n_input_dims=3; fit-image needs n_input_dims=2 "
        "(leave it out to get 2)"
    )
    nested = {
        "type": "concat",
        "encodings": [{"type": "concat", "encodings": [{**GRID, "n_input_dims": 1}]}],
    }
    with pytest.raises(InputError) as info:
        resolve(nested, 3, "fit-sdf")
    assert str(info.value) == (
        "the hash_grid encoding in concat's encodings[0].encodings[0] is set to n_input_dims=1; fit-sdf needs "
        "n_input_dims=3 (leave it out to get 3)"
    )
