"""Bad input to the hash grid raises InputError / BackendUnavailable with these exact messages."""

import pytest
import torch

from fields3d import _native
from fields3d.encodings import HashGrid, HashGridConfig, hash_grid_encode
from fields3d.errors import BackendUnavailable, InputError


@pytest.fixture(scope="module")
def grid():
    return HashGrid(3, n_levels=2, log2_hashmap_size=6)


@pytest.mark.parametrize(
    "x,message",
    [
        (
            torch.rand(5, 3, dtype=torch.float64),
            "positions must be float32 of shape (N, 3), got float64 (5, 3)",
        ),
        (torch.rand(5, 2), "positions must be float32 of shape (N, 3), got float32 (5, 2)"),
        (torch.rand(5), "positions must be float32 of shape (N, 3), got float32 (5,)"),
        (torch.rand(2, 5, 3), "positions must be float32 of shape (N, 3), got float32 (2, 5, 3)"),
        (
            torch.zeros(5, 3, dtype=torch.int64),
            "positions must be float32 of shape (N, 3), got int64 (5, 3)",
        ),
        ([[0.1, 0.2, 0.3]], "positions must be float32 of shape (N, 3), got list"),
        (
            torch.rand(5, 3).to_sparse(),
            "positions must be a dense (strided) tensor, got a sparse_coo tensor; convert it with .to_dense()",
        ),
    ],
)
def test_bad_positions(grid, x, message):
    with pytest.raises(InputError) as err:
        grid(x)
    assert str(err.value) == message


def test_positions_on_another_device(grid):
    with pytest.raises(InputError) as err:
        grid(torch.rand(4, 3, device="meta"))
    assert str(err.value) == (
        "positions must be on cpu like the hash grid's parameters, got meta; move one of them with .to(device)"
    )


def test_bad_params():
    config = HashGridConfig(2, 2, 2, 6)
    with pytest.raises(InputError) as err:
        hash_grid_encode(torch.rand(3, 2), torch.rand(10, 2), config)
    assert (
        str(err.value)
        == f"params must have shape ({config.n_entries}, 2) for this config, got (10, 2)"
    )
    with pytest.raises(InputError) as err:
        hash_grid_encode(
            torch.rand(3, 2), torch.zeros(config.n_entries, 2, dtype=torch.int32), config
        )
    assert str(err.value) == "params must be a float32 or float64 tensor, got int32"
    with pytest.raises(InputError) as err:
        hash_grid_encode(torch.rand(3, 2), torch.rand(config.n_entries, 2).to_sparse(), config)
    assert str(err.value) == (
        "params must be a dense (strided) tensor, got a sparse_coo tensor; convert it with .to_dense()"
    )


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n_input_dims": 5}, "n_input_dims must be 1, 2, 3 or 4, got 5"),
        ({"n_features_per_level": 3}, "n_features_per_level must be 1, 2, 4 or 8, got 3"),
        ({"interpolation": "cubic"}, "interpolation must be 'linear' or 'smoothstep', got 'cubic'"),
        ({"n_levels": 0}, "n_levels must be an integer from 1 to 32, got 0"),
        (
            {"log2_hashmap_size": 3},
            "log2_hashmap_size must be an integer from 4 to 30 (2^4 to 2^30 rows per level), got 3",
        ),
        (
            {"log2_hashmap_size": 31},
            "log2_hashmap_size must be an integer from 4 to 30 (2^4 to 2^30 rows per level), got 31",
        ),
        ({"base_resolution": 1}, "base_resolution must be an integer >= 2, got 1"),
        ({"per_level_scale": 0.5}, "per_level_scale must be a number from 1 to 16, got 0.5"),
        (
            {"n_levels": 32, "per_level_scale": 4.0},
            "the finest level's resolution (7.38e+19) exceeds 2^30; use fewer levels or a smaller per_level_scale",
        ),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(InputError) as err:
        HashGrid(**kwargs)
    assert str(err.value) == message


def test_cuda_path_without_cuda_raises_backend_unavailable():
    if torch.cuda.is_available() and _native.core().build_info()["cuda"]:
        pytest.skip("this machine can run CUDA kernels; the unavailable path cannot be reached")
    with pytest.raises(BackendUnavailable) as err:
        _native.check_backend(torch.device("cuda"))
    if _native.core().build_info()["cuda"]:
        expected = "fields3d was built with CUDA but sees no CUDA device for cuda; check the driver (nvidia-smi)"
    else:
        expected = (
            f"fields3d was built without CUDA, so it cannot run on cuda; {_native.REBUILD_CUDA}"
        )
    assert str(err.value) == expected
