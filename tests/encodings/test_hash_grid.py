"""HashGrid: layout, values and derivatives against the pure-torch reference, edge cases."""

import itertools
from pathlib import Path

import pytest
import torch

import fields3d
from fields3d import _core_ops
from fields3d.encodings import HashGrid, HashGridConfig, hash_grid_encode
from fields3d.encodings._levels import PRIMES
from fields3d.encodings.reference import hash_grid_reference


def small_config(d=3, f=2, log2=8, interp="linear", levels=4, base=4, scale=2.0):
    return HashGridConfig(d, levels, f, log2, base, scale, interp)


def random_table(config, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(config.n_entries, config.n_features_per_level, generator=g, dtype=dtype) * 2 - 1
    )


def test_default_layout_matches_instant_ngp():
    c = HashGridConfig()
    first, last = c.levels[0], c.levels[-1]
    assert (first.scale, first.resolution, first.size, first.offset, first.hashed) == (
        15.0,
        16,
        4096,
        0,
        False,
    )
    # level 1: scale 16*1.5-1 = 23, resolution 24, 24^3 = 13824 rows, directly indexed
    assert (c.levels[1].resolution, c.levels[1].size, c.levels[1].offset) == (24, 13824, 4096)
    # 16 * 1.5^15 - 1 = 7005.2..., resolution 7007, hashed into 2^19 rows
    assert (last.resolution, last.size, last.hashed) == (7007, 2**19, True)
    assert (
        sum(not lv.hashed for lv in c.levels) == 4
    )  # 16^3 .. 54^3 fit in 2^19 rows; 81^3 does not
    assert c.n_entries == sum(lv.size for lv in c.levels)
    assert c.n_output_dims == 32


def test_the_hash_primes_stand_once_and_agree():
    """The kernels' primes (one list in the core, cuda/encodings/lattice.h) are the ones the
    reference hashes with (one tuple in Python, fields3d/encodings/_levels.py)."""
    assert tuple(_core_ops.core().HASH_PRIMES) == PRIMES
    package = Path(fields3d.__file__).parent
    copies = [p for p in package.rglob("*.py") if "2654435761" in p.read_text()]
    assert copies == [package / "encodings" / "_levels.py"]
    core_dir = package.parent / "cuda"
    if core_dir.is_dir():  # a source checkout
        found = [
            p.relative_to(core_dir)
            for p in core_dir.rglob("*")
            if p.suffix in (".h", ".cuh", ".cpp", ".cu") and "2654435761" in p.read_text()
        ]
        assert found == [Path("encodings/lattice.h")]
        assert (core_dir / "encodings/lattice.h").read_text().count("2654435761") == 1


def test_dense_level_rows_are_rounded_up_to_eight():
    c = HashGridConfig(2, 1, 1, 10, 5, 1.5)  # scale 4, resolution 5, 25 vertices
    assert (c.levels[0].size, c.levels[0].hashed) == (32, False)


CASES = list(itertools.product([1, 2, 3, 4], [1, 2, 4, 8], ["linear", "smoothstep"]))


@pytest.mark.parametrize("d,f,interp", CASES)
def test_values_and_first_derivatives_match_reference(d, f, interp):
    log2 = [4, 9, 14][(d + f) % 3]  # tiny (all hashed), medium and large tables
    config = HashGridConfig(d, 5, f, log2, 3, 1.7, interp)
    table = random_table(config).requires_grad_()
    x = torch.rand(257, d, generator=torch.Generator().manual_seed(d * 10 + f)).requires_grad_()
    dy = torch.randn(257, config.n_output_dims)

    y = hash_grid_encode(x, table, config)
    gx, gt = torch.autograd.grad((y * dy).sum(), (x, table))
    y_ref = hash_grid_reference(x, table, config)
    gx_ref, gt_ref = torch.autograd.grad((y_ref * dy).sum(), (x, table))

    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(gt, gt_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        gx, gx_ref, rtol=1e-4, atol=1e-3
    )  # dx scales with the finest resolution


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("interp", ["linear", "smoothstep"])
def test_gradcheck_and_gradgradcheck_float64(d, interp):
    config = small_config(d=d, f=2, log2=6, interp=interp, levels=3, base=2)
    table = random_table(config, torch.float64).requires_grad_()
    x = torch.rand(
        9, d, dtype=torch.float64, generator=torch.Generator().manual_seed(d)
    ).requires_grad_()

    def fn(x, table):
        return hash_grid_encode(x, table, config)

    assert torch.autograd.gradcheck(fn, (x, table))
    assert torch.autograd.gradgradcheck(fn, (x, table))


def eikonal_param_grad(encode, x, table, head):
    x = x.clone().requires_grad_()
    sdf = encode(x, table) @ head
    g = torch.autograd.grad(sdf.sum(), x, create_graph=True)[0]
    loss = ((g.norm(dim=-1) - 1) ** 2).mean()
    return torch.autograd.grad(loss, table)[0]


@pytest.mark.parametrize("interp", ["linear", "smoothstep"])
def test_eikonal_loss_trains_the_table_like_the_reference(interp):
    config = small_config(d=3, f=2, log2=10, interp=interp, levels=4)
    table = random_table(config, torch.float64).requires_grad_()
    x = torch.rand(300, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    head = torch.randn(
        config.n_output_dims, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )

    ours = eikonal_param_grad(lambda x, t: hash_grid_encode(x, t, config), x, table, head)
    ref = eikonal_param_grad(lambda x, t: hash_grid_reference(x, t, config), x, table, head)
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


def test_double_backward_through_dy_and_table_paths():
    # d/d(table, x, dy) of a loss on both outputs of the backward pass, against the reference.
    config = small_config(d=2, f=4, log2=7, interp="smoothstep")
    table = random_table(config, torch.float64).requires_grad_()
    x = torch.rand(
        50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    ).requires_grad_()
    dy = torch.randn(50, config.n_output_dims, dtype=torch.float64).requires_grad_()

    def second_order(encode):
        gx, gt = torch.autograd.grad(
            (encode(x, table, config) * dy).sum(), (x, table), create_graph=True
        )
        loss = (gx**2).sum() + (
            gt * torch.linspace(-1, 1, gt.numel(), dtype=gt.dtype).view_as(gt)
        ).sum()
        return torch.autograd.grad(loss, (x, table, dy))

    for a, b in zip(second_order(hash_grid_encode), second_order(hash_grid_reference)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_points(n):
    grid = HashGrid(3, n_levels=4, log2_hashmap_size=8)
    x = torch.rand(n, 3, requires_grad=True)
    y = grid(x)
    assert y.shape == (n, 8)
    y.sum().backward()
    assert x.grad.shape == (n, 3)
    assert grid.params.grad.shape == grid.params.shape
    assert (grid.params.grad.abs().sum() > 0) == (n == 1)


def test_non_contiguous_and_transposed_positions():
    config = small_config()
    table = random_table(config)
    base = torch.rand(3, 100)
    transposed = base.t()  # (100, 3), strides (1, 100)
    strided = torch.rand(100, 6)[:, ::2]
    assert not transposed.is_contiguous() and not strided.is_contiguous()
    for x in (transposed, strided):
        torch.testing.assert_close(
            hash_grid_encode(x, table, config), hash_grid_encode(x.contiguous(), table, config)
        )
    xt = transposed.detach().requires_grad_()
    hash_grid_encode(xt, table, config).sum().backward()
    xc = transposed.contiguous().requires_grad_()
    hash_grid_encode(xc, table, config).sum().backward()
    torch.testing.assert_close(xt.grad, xc.grad)


def test_outside_unit_cube_is_clamped_with_zero_gradient_along_clamped_axes():
    config = small_config()
    table = random_table(config, torch.float64)
    x = torch.tensor([[-0.5, 0.3, 1.7], [2.0, -3.0, 0.5]], dtype=torch.float64, requires_grad=True)
    y = hash_grid_encode(x, table, config)
    torch.testing.assert_close(y, hash_grid_encode(x.detach().clamp(0, 1), table, config))
    (gx,) = torch.autograd.grad(y.sum(), x)
    assert gx[0, 0] == 0 and gx[0, 2] == 0 and gx[1, 0] == 0 and gx[1, 1] == 0
    assert gx[0, 1] != 0 and gx[1, 2] != 0


def test_nan_rows_encode_to_nan_and_contribute_no_gradient():
    config = small_config()
    table = random_table(config).requires_grad_()
    x = torch.rand(20, 3)
    x[5, 1] = float("nan")
    xg = x.clone().requires_grad_()
    y = hash_grid_encode(xg, table, config)
    assert torch.isnan(y[5]).all() and not torch.isnan(y[torch.arange(20) != 5]).any()
    dy = torch.randn_like(y)
    dy_masked = dy.clone()
    dy_masked[5] = 0
    gx, gt = torch.autograd.grad(y, (xg, table), dy)
    assert (gx[5] == 0).all() and torch.isfinite(gx).all()
    keep = torch.arange(20) != 5
    gt_without = torch.autograd.grad(hash_grid_encode(x[keep], table, config), table, dy[keep])[0]
    torch.testing.assert_close(gt, gt_without)


def test_boundary_coordinates_match_reference():
    config = small_config(d=2, log2=12, interp="smoothstep")
    table = random_table(config)
    edges = torch.tensor([0.0, 1e-7, 0.25, 0.5, 1 - 1e-7, 1.0])
    x = torch.cartesian_prod(edges, edges)
    torch.testing.assert_close(
        hash_grid_encode(x, table, config), hash_grid_reference(x, table, config), rtol=0, atol=1e-6
    )


def test_module_initialisation_and_attributes():
    grid = HashGrid()
    assert grid.n_input_dims == 3 and grid.n_output_dims == 32
    assert grid.params.dtype == torch.float32
    assert grid.params.shape == (grid.spec.n_entries, 2)
    assert grid.params.abs().max() <= 1e-4 and grid.params.std() > 1e-5
    assert "T=2^19" in repr(grid)
