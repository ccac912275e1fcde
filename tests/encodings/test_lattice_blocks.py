"""The CPU launchers walk each level with a table of 2 MB or more in blocks of points
(cuda/encodings/lattice_blocks.h: 32 points), the others point by point, in one range of at least
1024 points per thread. Sizes around those edges must give every point exactly its own result:
per-point outputs bitwise equal to the point encoded alone, and table gradients equal to the
pure-torch reference's sums (float64), for every lattice kind."""

import pytest
import torch
from lattice_cases import CASES, IDS, random_table

from fields3d import _native
from fields3d.encodings import HashGridConfig, hash_grid_encode
from fields3d.encodings.reference import hash_grid_reference

HASH = (
    "hash3-f2",
    HashGridConfig(n_levels=6, log2_hashmap_size=10, base_resolution=4, per_level_scale=1.8),
    hash_grid_encode,
    hash_grid_reference,
)
# 2^18 rows of 2 float32 (2 MB) at every level: walked in blocks (the small tables of the other
# cases point by point; cuda/encodings/lattice.cpp, kBlockMinBytes)
HASH_BIG = (
    "hash3-f2-big",
    HashGridConfig(n_levels=3, log2_hashmap_size=18, base_resolution=80, per_level_scale=2.0),
    hash_grid_encode,
    hash_grid_reference,
)
ALL = [HASH, HASH_BIG, *CASES]
SIZES = (1, 31, 32, 33, 95, 1025, 2113)  # around the 32-point block and 1024-point range edges
# Rows compared with the point encoded alone: those around the edges (all of them is slow).
CHECKED = [*range(100), *range(1000, 1100), *range(2013, 2113)]


def per_point_outputs(x, table, config, encode, dy, u):
    """y, d(y . dy)/dx and the double backward's dx (of u . dx): each row depends on its own point
    (and its rows of dy and u) only."""
    x = x.clone().requires_grad_()
    y = encode(x, table, config)
    (gx,) = torch.autograd.grad((y * dy).sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad((gx * u).sum(), x)
    return y.detach(), gx.detach(), ggx


@pytest.fixture(params=[1, 3], ids=["1-thread", "3-threads"])
def threads(request):
    core = _native.core()
    before = core.num_threads()
    core.set_num_threads(request.param)
    yield request.param
    core.set_num_threads(before)


@pytest.mark.parametrize("name,config,encode,reference", ALL, ids=[HASH[0], HASH_BIG[0], *IDS])
def test_block_edges_give_each_point_its_own_result(threads, name, config, encode, reference):
    table = random_table(config)
    n, gen = max(SIZES), torch.Generator().manual_seed(3)
    x = torch.rand(n, config.n_input_dims, generator=gen)
    x[5] = float("nan")  # a NaN point inside the first block
    dy = torch.randn(n, config.n_output_dims, generator=gen)
    u = torch.randn(n, config.n_input_dims, generator=gen)
    one = lambda t, i: t[i : i + 1]  # noqa: E731
    alone = {
        i: per_point_outputs(one(x, i), table, config, encode, one(dy, i), one(u, i))
        for i in CHECKED
    }
    for size in SIZES:
        batch = per_point_outputs(x[:size], table, config, encode, dy[:size], u[:size])
        rows = [i for i in CHECKED if i < size]
        for k, what in enumerate(("y", "dx", "second-order dx")):
            want = torch.cat([alone[i][k] for i in rows])
            got = batch[k][rows]
            assert torch.equal(got.isnan(), want.isnan()), f"{what}, {size} points"
            assert torch.equal(got.nan_to_num(), want.nan_to_num()), f"{what}, {size} points"


@pytest.mark.parametrize("name,config,encode,reference", ALL, ids=[HASH[0], HASH_BIG[0], *IDS])
def test_block_edges_sum_every_point_into_the_table(threads, name, config, encode, reference):
    table = random_table(config, torch.float64).requires_grad_()
    for size in SIZES:
        x = torch.rand(
            size,
            config.n_input_dims,
            dtype=torch.float64,
            generator=torch.Generator().manual_seed(size),
        )
        dy = torch.randn(
            size,
            config.n_output_dims,
            dtype=torch.float64,
            generator=torch.Generator().manual_seed(size + 1),
        )
        xg = x.clone().requires_grad_()
        got = torch.autograd.grad((encode(xg, table, config) * dy).sum(), table, create_graph=True)[
            0
        ]
        want = torch.autograd.grad((reference(x, table, config) * dy).sum(), table)[0]
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=f"{size} points")
        # the eikonal path's table gradient (double backward, table part)
        (gx,) = torch.autograd.grad((encode(xg, table, config) * dy).sum(), xg, create_graph=True)
        got2 = torch.autograd.grad(gx.square().sum(), table)[0]
        xr = x.clone().requires_grad_()
        (gr,) = torch.autograd.grad(
            (reference(xr, table, config) * dy).sum(), xr, create_graph=True
        )
        want2 = torch.autograd.grad(gr.square().sum(), table)[0]
        torch.testing.assert_close(got2, want2, rtol=1e-8, atol=1e-8, msg=f"{size} points")
