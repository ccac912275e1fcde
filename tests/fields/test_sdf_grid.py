"""BandSDFGrid: trilinear values, analytic gradients, band parameters and checkpoint parts."""

import math

import numpy as np
import pytest
import torch

from fields3d.errors import InputError
from fields3d.fields.sdf_grid import BandSDFGrid


def _grid(res=9, seed=0, band_fraction=0.5):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn((res,) * 3, generator=g)
    band = torch.rand((res,) * 3, generator=g) < band_fraction
    return BandSDFGrid(values, band), values, band


def _reference(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grid_sample (trilinear, align_corners=True): grid point i at -1 + 2 i / (R - 1)."""
    grid = x.flip(-1).view(1, -1, 1, 1, 3)  # grid_sample takes (x=W, y=H, z=D) = (k, j, i)
    out = torch.nn.functional.grid_sample(
        values[None, None], grid, mode="bilinear", align_corners=True
    )
    return out.view(-1)


def test_values_match_trilinear_reference():
    grid, values, _ = _grid()
    x = torch.rand(500, 3) * 2 - 1
    torch.testing.assert_close(grid(x), _reference(values, x), rtol=1e-5, atol=1e-5)


def test_analytic_gradient_matches_autograd():
    grid, _values, _ = _grid()
    x = (torch.rand(300, 3) * 1.8 - 0.9).requires_grad_()
    value, grad = grid.value_and_grad(x)
    (auto,) = torch.autograd.grad(grid(x).sum(), x)
    torch.testing.assert_close(value, grid(x))
    torch.testing.assert_close(grad, auto, rtol=1e-4, atol=1e-4)


def test_only_band_points_are_parameters_and_get_gradients():
    grid, values, band = _grid()
    assert grid.values.numel() == int(band.sum())
    x = torch.rand(2000, 3) * 2 - 1
    _, g = grid.value_and_grad(x)
    (grid(x).sum() + g.square().sum()).backward()
    assert grid.values.grad is not None and grid.values.grad.abs().sum() > 0
    dense = grid.dense()
    torch.testing.assert_close(dense, values)  # untrained: the initial values everywhere
    with torch.no_grad():
        grid.values.add_(1.0)
    changed = grid.dense() != values
    assert torch.equal(changed, band)


class _ValueAndGrad(torch.nn.Module):
    def __init__(self, grid):
        super().__init__()
        self.grid = grid

    def forward(self, x):
        return self.grid.value_and_grad(x)


def test_value_and_gradient_are_differentiable_in_float64():
    grid, _, _ = _grid(res=5)
    module = _ValueAndGrad(grid.double())
    x = torch.rand(20, 3, dtype=torch.float64) * 1.6 - 0.8

    def fn(v):
        return torch.func.functional_call(module, {"grid.values": v}, (x,))

    torch.autograd.gradcheck(fn, (grid.values.detach().clone().requires_grad_(),))


def test_from_coarse_and_from_parts_round_trip():
    coarse = torch.randn(5, 5, 5)
    band = torch.zeros(9, 9, 9, dtype=torch.bool)
    band[2:6, 3:7, 1:4] = True
    grid = BandSDFGrid.from_coarse(coarse, band)
    with torch.no_grad():
        grid.values.uniform_()
    again = BandSDFGrid.from_parts(grid.coarse, grid.band_index, grid.values.detach(), 9)
    torch.testing.assert_close(again.dense(), grid.dense())
    # grid points shared with the coarse grid keep the coarse value outside the band
    torch.testing.assert_close(
        grid.dense()[::2, ::2, ::2][~band[::2, ::2, ::2]], coarse[~band[::2, ::2, ::2]]
    )


def test_from_parts_rejects_mismatched_parts():
    with pytest.raises(InputError, match=r"coarse must be \(C, C, C\)"):
        BandSDFGrid.from_parts(torch.zeros(4, 4), torch.arange(3), torch.zeros(3), 8)
    # a slab or a box of a checkpoint's coarse values was upsampled and meshed into a wrong surface
    for shape in ((4, 4, 1), (4, 4, 3), (1, 1, 1)):
        with pytest.raises(InputError) as err:
            BandSDFGrid.from_parts(torch.zeros(shape), torch.arange(3), torch.zeros(3), 8)
        assert str(err.value) == (
            "coarse must be (C, C, C) with C >= 2 and band_index hold one index per value, "
            f"got {shape}, (3,) and (3,)"
        )
    with pytest.raises(InputError, match="band_index must be sorted"):
        BandSDFGrid.from_parts(torch.zeros(4, 4, 4), torch.tensor([5, 2, 2]), torch.zeros(3), 8)


def test_laplacian_of_a_linear_field_is_zero():
    res = 12
    axis = torch.linspace(-1, 1, res)
    values = (axis.view(-1, 1, 1) * 0.3 + axis.view(1, -1, 1) * 0.5 - axis.view(1, 1, -1)).expand(
        res, res, res
    )
    grid = BandSDFGrid(values.contiguous(), torch.ones(res, res, res, dtype=torch.bool))
    lap = grid.laplacian(500, torch.Generator().manual_seed(0))
    assert lap.numel() > 100
    torch.testing.assert_close(lap, torch.zeros_like(lap), atol=1e-5, rtol=0)


V5 = torch.randn(5, 5, 5, generator=torch.Generator().manual_seed(0))
BAND5 = V5.abs() < 1


@pytest.mark.parametrize(
    "initial, band, message",
    [
        (V5.tolist(), BAND5, "initial must be a torch.Tensor, got list"),
        (
            V5.numpy(),
            BAND5,
            "initial must be a torch.Tensor, got ndarray; convert it with torch.from_numpy",
        ),
        (V5, None, "band must be a torch.Tensor, got NoneType"),
        (
            torch.tensor(1.0),
            torch.tensor(True),
            "initial and band must both be (R, R, R) with R >= 2, got () and ()",
        ),
        (
            V5,
            BAND5.float(),
            "band must be a bool tensor (the lattice points to optimise), got float32; build it with a "
            "comparison such as values.abs() < width",
        ),
        (
            V5,
            torch.zeros(5, 5, 5, dtype=torch.bool),
            "band must mark at least one lattice point to optimise, got none",
        ),
        (
            V5.to(torch.complex64),
            BAND5,
            "initial must hold real values (float or integer), got complex64",
        ),
        (
            torch.where(BAND5, V5, math.nan),
            BAND5,
            f"initial must be finite, got NaN or infinite values at "
            f"{int((~BAND5).sum())} lattice points; replace them (torch.nan_to_num) before building the grid",
        ),
        (
            V5,
            BAND5.to("meta"),
            "band must be on cpu like initial, got meta; move it with .to(device)",
        ),
    ],
)
def test_constructor_errors(initial, band, message):
    with pytest.raises(InputError) as err:
        BandSDFGrid(initial, band)
    assert str(err.value) == message


def test_from_coarse_and_from_parts_errors():
    band9 = torch.ones(9, 9, 9, dtype=torch.bool)
    for call, message in [
        (
            lambda: BandSDFGrid.from_coarse(torch.zeros(5, 5, 3), band9),
            "coarse and band must be (C, C, C) and (R, R, R) with C, R >= 2, got (5, 5, 3) and (9, 9, 9)",
        ),
        (
            lambda: BandSDFGrid.from_coarse(V5, np.ones((9, 9, 9), dtype=bool)),
            "band must be a torch.Tensor, got ndarray; convert it with torch.from_numpy",
        ),
        (
            lambda: BandSDFGrid.from_parts(
                V5, torch.arange(3), torch.zeros(3), 10**5
            ),  # a 10^15-point grid
            "resolution must be an integer from 2 to 2048, got 100000",
        ),
        (
            lambda: BandSDFGrid.from_parts(V5, torch.arange(3), torch.zeros(3), 8.0),
            "resolution must be an integer >= 2, got 8.0",
        ),
        (
            lambda: BandSDFGrid.from_parts(V5, torch.tensor([0.5, 1.7, 2.2]), torch.zeros(3), 8),
            "band_index must hold integer lattice indices, got float32",
        ),
        (
            lambda: BandSDFGrid.from_parts(V5, torch.arange(3), None, 8),
            "values must be a torch.Tensor, got NoneType",
        ),
        (
            lambda: BandSDFGrid.from_parts(
                V5, torch.arange(3), torch.zeros(3, dtype=torch.int64), 8
            ),
            "values must be a float tensor, got int64",
        ),
    ]:
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == message


@pytest.mark.parametrize(
    "x, message",
    [
        ([[0.0, 0.0, 0.0]], "x must be float32 of shape (N, 3), got list"),
        (torch.rand(4, 2), "x must be float32 of shape (N, 3), got float32 (4, 2)"),
        (torch.rand(3), "x must be float32 of shape (N, 3), got float32 (3,)"),
        (
            torch.rand(4, 3, dtype=torch.float64),
            "x must be float32 of shape (N, 3), got float64 (4, 3)",
        ),
        (
            torch.rand(4, 3).to_sparse(),
            "x must be a dense (strided) tensor, got a sparse_coo tensor; convert it with "
            ".to_dense()",
        ),
        (
            torch.rand(4, 3, device="meta"),
            "x must be on cpu like the grid's values, got meta; move one of them with .to(device)",
        ),
    ],
)
def test_bad_points(x, message):
    grid, _, _ = _grid(res=5)
    for call in (grid, grid.value_and_grad):
        with pytest.raises(InputError) as err:
            call(x)
        assert str(err.value) == message


def test_nan_points_give_nan_not_a_bad_index():
    # a NaN coordinate used to become a garbage grid index (IndexError on the CPU, a device assert on CUDA)
    grid, values, _ = _grid(res=5)
    x = torch.tensor([[math.nan, 0.0, 0.0], [0.1, 0.2, 0.3]])
    out = grid(x)
    assert bool(out[0].isnan()) and torch.isclose(out[1], _reference(values, x[1:]))[0]
    value, grad = grid.value_and_grad(x)
    assert (
        bool(value[0].isnan())
        and bool(grad[0].isnan().any())
        and bool(torch.isfinite(grad[1]).all())
    )


def test_laplacian_errors():
    grid, _, _ = _grid(res=5)
    for args, message in [
        (("5",), "count must be an integer >= 1, got '5'"),
        ((0,), "count must be an integer >= 1, got 0"),
        ((5, "seed"), "generator must be a torch.Generator or None, got str"),
    ]:
        with pytest.raises(InputError) as err:
            grid.laplacian(*args)
        assert str(err.value) == message
