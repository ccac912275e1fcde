"""Bad inputs to the neighbour search raise InputError (or the core's ValueError for hand-made
calls) with these exact messages."""

import pytest
import torch

from fields3d import _core_ops, _native
from fields3d.errors import InputError
from fields3d.geometry.knn import knn


@pytest.mark.parametrize(
    "centers,points,k,message",
    [
        (
            torch.zeros(4, 3).long(),
            torch.rand(2, 3),
            1,
            "centers must be a float32 or float64 tensor of shape (M, 2) or (M, 3), got int64 (4, 3)",
        ),
        (
            torch.rand(4, 4),
            torch.rand(2, 4),
            1,
            "centers must be a float32 or float64 tensor of shape (M, 2) or (M, 3), got float32 (4, 4)",
        ),
        (
            torch.rand(0, 3),
            torch.rand(2, 3),
            1,
            "centers must hold at least one center, got (0, D)",
        ),
        (
            torch.rand(4, 3),
            torch.rand(2, 3, dtype=torch.float64),
            1,
            "points must be float32 of shape (N, 3), got float64 (2, 3)",
        ),
        (
            torch.rand(4, 2),
            torch.rand(2, 3),
            1,
            "points must be float32 of shape (N, 2), got float32 (2, 3)",
        ),
        (
            torch.rand(4, 3),
            torch.rand(2, 3, device="meta"),
            1,
            "points must be on cpu like centers, got meta; move one of them with .to(device)",
        ),
        (
            torch.rand(4, 3),
            torch.rand(2, 3).to_sparse(),
            1,
            "points must be a dense (strided) tensor, got a sparse_coo tensor; convert it with .to_dense()",
        ),
        (
            torch.rand(4, 3).to_sparse(),
            torch.rand(2, 3),
            1,
            "centers must be a dense (strided) tensor, got a sparse_coo tensor; convert it with .to_dense()",
        ),
        (
            torch.rand(4, 3),
            torch.rand(2, 3),
            5,
            "k must be an integer from 1 to min(32, M) = 4, got 5",
        ),
        (
            torch.rand(40, 3),
            torch.rand(2, 3),
            33,
            "k must be an integer from 1 to min(32, M) = 32, got 33",
        ),
        (
            torch.rand(40, 3),
            torch.rand(2, 3),
            0,
            "k must be an integer from 1 to min(32, M) = 32, got 0",
        ),
        (
            torch.tensor([[0.0, 0.0, float("inf")]]),
            torch.rand(2, 3),
            1,
            "centers must be finite (found NaN or inf)",
        ),
        (
            torch.tensor([[0.0, float("nan"), 0.0]]),
            torch.rand(2, 3),
            1,
            "centers must be finite (found NaN or inf)",
        ),
    ],
)
def test_bad_knn_inputs(centers, points, k, message):
    with pytest.raises(InputError) as err:
        knn(centers, points, k)
    assert str(err.value) == message


def knn_call(**change):
    """The core's knn with valid arguments for 4 centers, 5 points, k = 3, except `change`."""
    c = _native.capsule
    a = dict(
        centers=torch.rand(4, 3),
        points=torch.rand(5, 3),
        k=3,
        origin=[0.0, 0.0, 0.0],
        cell=0.5,
        resolution=[2, 2, 2],
        cell_start=torch.empty(9, dtype=torch.int64),
        order=torch.empty(4, dtype=torch.int64),
        indices=torch.empty(5, 3, dtype=torch.int64),
        dist2=torch.empty(5, 3),
    )
    a.update(change)
    tensors = {k: c(v) if isinstance(v, torch.Tensor) else v for k, v in a.items()}
    return _core_ops.knn(**tensors)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"centers": torch.rand(4, 4)}, "centers must have shape (M, 2) or (M, 3), got (4, 4)"),
        ({"centers": torch.rand(0, 3)}, "centers must hold at least one center"),
        ({"points": torch.rand(5, 2)}, "points must have shape (N, 3), got (5, 2)"),
        (
            {"points": torch.rand(5, 3, dtype=torch.float64)},
            "points must have the dtype of centers (float32), got float64",
        ),
        ({"k": 5}, "k must be between 1 and min(32, number of centers) = 4, got 5"),
        ({"origin": [0.0, 0.0]}, "origin must have 3 entries, got 2"),
        ({"origin": [0.0, float("nan"), 0.0]}, "origin must be finite"),
        ({"cell": 0.0}, "cell must be positive and finite"),
        ({"resolution": [2, 0, 2]}, "resolution entries must be between 1 and 2^24"),
        ({"resolution": [4096, 4096, 2]}, "the grid must have at most 2^24 cells"),
        (
            {"cell_start": torch.empty(8, dtype=torch.int64)},
            "cell_start must have shape (9,), got (8,)",
        ),
        (
            {"order": torch.empty(4, dtype=torch.int32)},
            "order must be int64, got DLPack dtype code 0 with 32 bits",
        ),
        (
            {"indices": torch.empty(5, 2, dtype=torch.int64)},
            "indices must have shape (5, 3), got (5, 2)",
        ),
        (
            {"dist2": torch.empty(5, 3, dtype=torch.float64)},
            "dist2 must have the dtype of centers (float32), got float64",
        ),
        ({"dist2": torch.empty(6, 3)}, "dist2 must have shape (5, 3), got (6, 3)"),
    ],
)
def test_core_knn_checks(change, message):
    with pytest.raises(ValueError) as err:
        knn_call(**change)
    assert str(err.value) == message


def test_core_grid_shape_checks():
    with pytest.raises(ValueError) as err:
        _core_ops.knn_grid_shape([0.0] * 4, [1.0] * 4, 10, 2)
    assert str(err.value) == "lo must have 2 or 3 entries, got 4"
    with pytest.raises(ValueError) as err:
        _core_ops.knn_grid_shape([0.0] * 3, [1.0, float("inf"), 1.0], 10, 2)
    assert str(err.value) == "hi must be finite"
    with pytest.raises(ValueError) as err:
        _core_ops.knn_grid_shape([0.0] * 3, [1.0] * 3, 10, 11)
    assert str(err.value) == "k must be between 1 and min(32, number of centers) = 10, got 11"
