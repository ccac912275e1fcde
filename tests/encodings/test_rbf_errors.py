"""Bad settings and inputs for the RBF encoding raise InputError with these exact messages (its
neighbour search's: tests/geometry/test_knn_errors.py)."""

import pytest
import torch

from fields3d.encodings import RBFConfig, RBFEncoding, create, rbf_encode
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
