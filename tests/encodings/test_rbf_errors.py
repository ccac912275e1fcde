"""Bad settings and inputs for the RBF encoding and its neighbour search raise InputError (or the
core's ValueError for hand-made calls) with these exact messages."""

import pytest
import torch

from fields3d import _native
from fields3d.encodings import RBFConfig, RBFEncoding, create, rbf_encode, rbf_knn
from fields3d.errors import InputError

FREQ = (
    "frequencies must be a list of at most n_features ({f}) numbers in (0, 10000] (empty: plain RBF "
    "features), got {got}; channel f uses frequency f mod L, so give at most one frequency per feature"
)


@pytest.mark.parametrize(
    "config,message",
    [
        ({"n_input_dims": 4}, "n_input_dims must be 2 or 3, got 4"),
        ({"n_input_dims": 1}, "n_input_dims must be 2 or 3, got 1"),
        ({"n_bases": 0}, "n_bases must be an integer from 1 to 16777216, got 0"),
        ({"n_features": 0}, "n_features must be an integer from 1 to 256, got 0"),
        ({"k": 33}, "k must be an integer from 1 to 32, got 33"),
        ({"k": 2.0}, "k must be an integer from 1 to 32, got 2.0"),
        (
            {"n_bases": 4, "k": 8},
            "k (8) must be at most n_bases (4); use fewer neighbours or more bases",
        ),
        ({"shape": "round"}, "shape must be 'isotropic', 'diagonal' or 'full', got 'round'"),
        ({"kernel": "cauchy"}, "kernel must be 'inverse_quadratic' or 'gaussian', got 'cauchy'"),
        ({"frequencies": [1.0, -2.0]}, FREQ.format(f=16, got="[1.0, -2.0]")),
        (
            {"n_features": 2, "frequencies": [1.0, 2.0, 4.0]},
            FREQ.format(f=2, got="[1.0, 2.0, 4.0]"),
        ),
        ({"frequencies": "1,2"}, FREQ.format(f=16, got="'1,2'")),
        (
            {"frequencies": [1e308]},
            FREQ.format(f=16, got="[1e+308]"),
        ),  # sin(1e308 phi) overflows: NaN features
        ({"frequencies": [1.0, 10000.5]}, FREQ.format(f=16, got="[1.0, 10000.5]")),
        ({"frequencies": [float("nan")]}, FREQ.format(f=16, got="[nan]")),
        ({"frequencies": [float("inf")]}, FREQ.format(f=16, got="[inf]")),
        ({"frequencies": [True]}, FREQ.format(f=16, got="[True]")),
        ({"frequencies": ["2"]}, FREQ.format(f=16, got="['2']")),
        ({"frequencies": [0]}, FREQ.format(f=16, got="[0]")),
    ],
)
def test_bad_settings(config, message):
    with pytest.raises(InputError) as err:
        create({"type": "rbf", **config})
    assert str(err.value) == message


@pytest.mark.parametrize(
    "module,x,message",
    [
        (
            lambda: RBFEncoding(2, 8, 2, 2, frequencies=[]),
            torch.rand(5, 3),
            "positions must be float32 of shape (N, 2), got float32 (5, 3)",
        ),
        (
            lambda: RBFEncoding(3, 8, 2, 2, frequencies=[]),
            torch.rand(5, 3, dtype=torch.float64),
            "positions must be float32 of shape (N, 3), got float64 (5, 3)",
        ),
        (
            lambda: RBFEncoding(3, 8, 2, 2, frequencies=[]),
            [[0.1, 0.2, 0.3]],
            "positions must be float32 of shape (N, 3), got list",
        ),
        (
            lambda: RBFEncoding(3, 8, 2, 2, frequencies=[]),
            torch.rand(4, 3, device="meta"),
            "positions must be on cpu like the RBF encoding's parameters, got meta; move one of them with .to(device)",
        ),
        (
            lambda: RBFEncoding(3, 8, 2, 2, frequencies=[1.0, 2.0]),
            torch.rand(4, 3).to_sparse(),
            "positions must be a dense (strided) tensor, got a sparse_coo tensor; convert it with .to_dense()",
        ),
    ],
)
def test_bad_positions(module, x, message):
    with pytest.raises(InputError) as err:
        module()(x)
    assert str(err.value) == message


def test_largest_frequency_gives_finite_features():
    enc = RBFEncoding(3, 8, 2, 2, frequencies=[10000])
    assert enc.spec.frequencies == (10000.0,) and torch.isfinite(enc(torch.rand(5, 3))).all()


def test_params_of_the_wrong_shape():
    config = RBFConfig(3, 10, 2, 3, "diagonal", "gaussian", ())
    with pytest.raises(InputError) as err:
        rbf_encode(torch.rand(4, 3), torch.rand(10, 3), torch.rand(10), torch.rand(10, 2), config)
    assert (
        str(err.value)
        == "shapes must have shape (10, 3) and the weights' dtype for this config, got float32 (10,)"
    )
    with pytest.raises(InputError) as err:
        rbf_encode(
            torch.rand(4, 3), torch.rand(10, 3), torch.rand(10, 3), torch.rand(10, 2).long(), config
        )
    assert str(err.value) == "weights must be a float32 or float64 tensor, got int64"


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
        rbf_knn(centers, points, k)
    assert str(err.value) == message


def knn_call(**change):
    """The core's rbf_knn with valid arguments for 4 centers, 5 points, k = 3, except `change`."""
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
    return _native.core().rbf_knn(**tensors)


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
    core = _native.core()
    with pytest.raises(ValueError) as err:
        core.rbf_grid_shape([0.0] * 4, [1.0] * 4, 10, 2)
    assert str(err.value) == "lo must have 2 or 3 entries, got 4"
    with pytest.raises(ValueError) as err:
        core.rbf_grid_shape([0.0] * 3, [1.0, float("inf"), 1.0], 10, 2)
    assert str(err.value) == "hi must be finite"
    with pytest.raises(ValueError) as err:
        core.rbf_grid_shape([0.0] * 3, [1.0] * 3, 10, 11)
    assert str(err.value) == "k must be between 1 and min(32, number of centers) = 10, got 11"


@pytest.mark.parametrize(
    "points,weights,iters,message",
    [
        (
            torch.rand(10, 2),
            None,
            3,
            "points must be float32 of shape (P, 3) with P >= 1 on cpu, got float32 (10, 2) on cpu",
        ),
        (
            torch.rand(0, 3),
            None,
            3,
            "points must be float32 of shape (P, 3) with P >= 1 on cpu, got float32 (0, 3) on cpu",
        ),
        (
            [[0.0, 0.0, 0.0]],
            None,
            3,
            "points must be float32 of shape (P, 3) with P >= 1 on cpu, got list",
        ),
        (
            torch.rand(10, 3),
            -torch.ones(10),
            3,
            "weights must be a finite non-negative tensor of shape (10,) with a positive entry",
        ),
        (
            torch.rand(10, 3),
            torch.zeros(10),
            3,
            "weights must be a finite non-negative tensor of shape (10,) with a positive entry",
        ),
        (
            torch.rand(10, 3),
            torch.ones(9),
            3,
            "weights must be a finite non-negative tensor of shape (10,) with a positive entry",
        ),
        (torch.rand(10, 3), None, -1, "iters must be an integer >= 0, got -1"),
    ],
)
def test_bad_init_inputs(points, weights, iters, message):
    with pytest.raises(InputError) as err:
        RBFEncoding(3, 8, 2, 2, frequencies=[]).init_from_points(points, weights, iters)
    assert str(err.value) == message
