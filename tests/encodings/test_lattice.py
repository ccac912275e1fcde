"""Dense grid, tri-plane and simplex grid: values and derivatives (first and second order)
against the pure-torch references, and the edge cases every encoding must handle."""

import math

import pytest
import torch
from lattice_cases import CASES, IDS, SMALL, SMALL_IDS, random_points, random_table

from fields3d import _native
from fields3d.encodings import (
    DenseGridConfig,
    SimplexGridConfig,
    TriPlaneConfig,
    dense_grid_encode,
    simplex_grid_encode,
    triplane_encode,
)
from fields3d.encodings.simplex import skew_factor


@pytest.mark.parametrize("name,config,encode,reference", CASES, ids=IDS)
def test_values_and_first_derivatives_match_reference(name, config, encode, reference):
    table = random_table(config).requires_grad_()
    x = random_points(config, 257, seed=len(name)).requires_grad_()
    y = encode(x, table, config)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    gx, gt = torch.autograd.grad((y * dy).sum(), (x, table))
    y_ref = reference(x, table, config)
    gx_ref, gt_ref = torch.autograd.grad((y_ref * dy).sum(), (x, table))

    assert y.shape == (257, config.n_output_dims)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gt, gt_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name,config,encode,reference", SMALL, ids=SMALL_IDS)
def test_gradcheck_and_gradgradcheck_float64(name, config, encode, reference):
    assert config.n_entries * config.n_features <= 200
    table = random_table(config, torch.float64).requires_grad_()
    x = random_points(config, 6, torch.float64, seed=3).requires_grad_()

    def fn(x, table):
        return encode(x, table, config)

    assert torch.autograd.gradcheck(fn, (x, table))
    assert torch.autograd.gradgradcheck(fn, (x, table))


@pytest.mark.parametrize("name,config,encode,reference", CASES, ids=IDS)
def test_full_second_order_path_matches_reference(name, config, encode, reference):
    # d/d(x, table, dy) of a loss on both outputs of the backward pass: the eikonal-style path.
    table = random_table(config, torch.float64).requires_grad_()
    x = random_points(config, 40, torch.float64, seed=5).requires_grad_()
    n_out = reference(x[:1], table, config).shape[1]
    dy = torch.randn(
        40, n_out, dtype=torch.float64, generator=torch.Generator().manual_seed(6)
    ).requires_grad_()

    def second_order(fn):
        gx, gt = torch.autograd.grad(
            (fn(x, table, config) * dy).sum(), (x, table), create_graph=True
        )
        weights = torch.linspace(-1, 1, gt.numel(), dtype=gt.dtype).view_as(gt)
        loss = ((gx.norm(dim=-1) - 1) ** 2).sum() + (gt * weights).sum()
        return torch.autograd.grad(loss, (x, table, dy))

    for ours, ref in zip(second_order(encode), second_order(reference)):
        torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-10)


def test_dense_grid_interpolates_a_linear_function_exactly():
    # vertex values a + b.x reproduce a + b.x everywhere (corner-aligned layout, x-fastest rows)
    config = DenseGridConfig(3, 5, 1)
    i = torch.arange(5, dtype=torch.float64) / 4
    zz, yy, xx = torch.meshgrid(i, i, i, indexing="ij")
    table = (0.5 + 1.0 * xx - 2.0 * yy + 3.0 * zz).reshape(-1, 1)
    x = torch.rand(100, 3, dtype=torch.float64)
    expected = 0.5 + x[:, :1] - 2 * x[:, 1:2] + 3 * x[:, 2:]
    torch.testing.assert_close(dense_grid_encode(x, table, config), expected)


def test_triplane_planes_are_stacked_xy_xz_yz():
    config = TriPlaneConfig(3, 1, "concat")
    table = torch.zeros(config.n_entries, 1, dtype=torch.float64)
    table[9 + 4] = 1.0  # centre vertex of the (x, z) plane
    y = triplane_encode(
        torch.tensor([[0.5, 0.1, 0.5], [0.5, 0.5, 0.1]], dtype=torch.float64), table, config
    )
    torch.testing.assert_close(
        y, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.2, 0.0]], dtype=torch.float64)
    )


def test_simplex_skew_factor_follows_the_dimension():
    assert skew_factor(2) == pytest.approx((math.sqrt(3) - 1) / 2)
    assert skew_factor(3) == pytest.approx(
        1 / 3
    )  # (sqrt(4) - 1) / 3; a hard-coded sqrt(3) is wrong in 3D
    assert skew_factor(4) == pytest.approx((math.sqrt(5) - 1) / 4)


def test_simplex_weights_are_a_partition_of_unity_with_d_plus_1_vertices():
    # with every row the same constant, the encoding is that constant at any point
    config = SimplexGridConfig(3, 4, 1, 10, 3, 1.7)
    table = torch.full((config.n_entries, 1), 2.5, dtype=torch.float64)
    y = simplex_grid_encode(torch.rand(500, 3, dtype=torch.float64), table, config)
    torch.testing.assert_close(y, torch.full_like(y, 2.5))


@pytest.mark.parametrize("name,config,encode,reference", CASES[::3], ids=IDS[::3])
@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_points(name, config, encode, reference, n):
    table = random_table(config).requires_grad_()
    x = random_points(config, n).requires_grad_()
    y = encode(x, table, config)
    assert y.shape[0] == n
    y.sum().backward()
    assert x.grad.shape == (n, config.n_input_dims)
    assert (table.grad.abs().sum() > 0) == (n == 1)


@pytest.mark.parametrize("name,config,encode,reference", CASES[::2], ids=IDS[::2])
def test_strided_positions_outside_box_and_nan_rows(name, config, encode, reference):
    table = random_table(config, torch.float64).requires_grad_()
    d = config.n_input_dims
    x = torch.rand(60, d, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    x[3] = torch.linspace(-0.5, 1.5, d)  # clamped on its first and last axes
    x[4, 0] = float("nan")
    wide = torch.zeros(60, 2 * d, dtype=torch.float64)
    wide[:, ::2] = x
    xs = wide[:, ::2].requires_grad_()
    assert not xs.is_contiguous()
    y = encode(xs, table, config)
    torch.testing.assert_close(y, reference(x, table, config), equal_nan=True)
    assert torch.isnan(y[4]).all() and not torch.isnan(y[torch.arange(60) != 4]).any()
    dy = torch.ones_like(y)
    gx, gt = torch.autograd.grad(y, (xs, table), dy)
    assert (gx[4] == 0).all() and torch.isfinite(gx).all() and torch.isfinite(gt).all()
    assert gx[3, 0] == 0 and gx[3, d - 1] == 0
    keep = torch.arange(60) != 4
    gt_without = torch.autograd.grad(encode(x[keep], table, config), table, dy[keep])[0]
    torch.testing.assert_close(gt, gt_without)


@pytest.mark.parametrize("name,config,encode,reference", CASES, ids=IDS)
def test_boundary_coordinates_match_reference(name, config, encode, reference):
    table = random_table(config)
    edges = torch.tensor([0.0, 1e-7, 0.25, 0.5, 1 - 1e-7, 1.0])
    x = torch.cartesian_prod(*[edges] * config.n_input_dims)
    torch.testing.assert_close(
        encode(x, table, config), reference(x, table, config), rtol=1e-5, atol=1e-5
    )


def test_thread_count_does_not_change_table_gradients():
    # the dense grid's table gradient is summed from per-range private copies
    config = DenseGridConfig(3, 16, 4)
    table = random_table(config, torch.float64).requires_grad_()
    x = random_points(config, 20000, torch.float64)
    dy = torch.randn(20000, 4, dtype=torch.float64)
    core = _native.core()
    before = core.num_threads()
    try:
        grads = []
        for threads in (1, 2, 3):
            core.set_num_threads(threads)
            grads.append(torch.autograd.grad(dense_grid_encode(x, table, config), table, dy)[0])
    finally:
        core.set_num_threads(before)
    for g in grads[1:]:
        torch.testing.assert_close(g, grads[0], rtol=1e-12, atol=1e-12)
