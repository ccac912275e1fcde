"""The core's grid neighbour search (knn) against brute force, on random, clustered and
degenerate center sets; ties go to the lower center index."""

import pytest
import torch

from fields3d import _core_ops, _native
from fields3d.geometry.knn import knn


def brute_force(centers, points, k):
    """(indices, dist2) of the k nearest centers, ties by lower index; distances summed axis by
    axis in order, as the core sums them."""
    d2 = sum((points[:, None, d] - centers[None, :, d]) ** 2 for d in range(centers.shape[1]))
    d2 = d2 if len(points) else torch.zeros(0, len(centers), dtype=centers.dtype)
    order = torch.sort(d2, dim=1, stable=True).indices[:, :k]
    return order, torch.gather(d2, 1, order)


def uniform(m, d, dtype, seed):
    return torch.rand(m, d, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def clustered(m, d, dtype, seed):
    """Tight clusters of very different sizes and spreads, plus a few far outliers."""
    g = torch.Generator().manual_seed(seed)
    sizes = [m // 2, m // 4, m // 8]
    parts = [
        torch.randn(n, d, generator=g, dtype=dtype) * s + torch.rand(1, d, generator=g, dtype=dtype)
        for n, s in zip(sizes, (1e-3, 3e-2, 1e-1))
    ]
    rest = m - sum(sizes)
    parts.append(torch.rand(rest, d, generator=g, dtype=dtype) * 20 - 10)
    return torch.cat(parts)


def queries(n, d, dtype, seed):
    """Points in and around the unit box, some far outside it."""
    x = torch.rand(n, d, dtype=dtype, generator=torch.Generator().manual_seed(seed)) * 2 - 0.5
    x[:5] *= 100
    return x


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("make", [uniform, clustered], ids=["uniform", "clustered"])
@pytest.mark.parametrize("m,k", [(1, 1), (7, 3), (500, 1), (500, 8), (2000, 32), (33, 32)])
def test_matches_brute_force_float64(dims, make, m, k):
    centers = make(m, dims, torch.float64, seed=m + k)
    points = queries(700, dims, torch.float64, seed=k)
    got = knn(centers, points, k)
    want_i, want_d = brute_force(centers, points, k)
    assert got.indices.dtype == torch.int64 and got.indices.shape == (700, k)
    assert torch.equal(got.indices, want_i)
    assert torch.equal(got.dist2, want_d)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("make", [uniform, clustered], ids=["uniform", "clustered"])
def test_matches_brute_force_float32(dims, make):
    centers = make(3000, dims, torch.float32, seed=dims)
    points = queries(2000, dims, torch.float32, seed=11)
    got = knn(centers, points, 8)
    want_i, want_d = brute_force(centers, points, 8)
    assert got.dist2.dtype == torch.float32
    torch.testing.assert_close(got.dist2, want_d, rtol=1e-6, atol=0)
    # where the float32 distances leave no near tie, the same centers, in the same order
    gaps = (want_d[:, 1:] - want_d[:, :-1]).min(dim=1).values > 1e-5 * want_d[:, -1]
    assert gaps.sum() > 1500
    assert torch.equal(got.indices[gaps], want_i[gaps])


def test_k_equal_to_m_returns_every_center_sorted():
    centers = uniform(20, 3, torch.float64, seed=1)
    points = queries(50, 3, torch.float64, seed=2)
    got = knn(centers, points, 20)
    assert torch.equal(got.indices.sort(dim=1).values, torch.arange(20).expand(50, 20))
    assert torch.equal(got.indices, brute_force(centers, points, 20)[0])


def test_no_points():
    got = knn(uniform(10, 3, torch.float32, seed=0), torch.zeros(0, 3), 4)
    assert got.indices.shape == (0, 4) and got.dist2.shape == (0, 4)


def test_duplicate_centers_tie_by_lower_index():
    base = uniform(30, 3, torch.float64, seed=4)
    centers = torch.cat(
        [base, base[:10], base[:5]]
    )  # rows 30..39 and 40..44 repeat rows 0..9 and 0..4
    points = torch.cat(
        [queries(200, 3, torch.float64, seed=5), base[:5]]
    )  # some exactly on a center
    got = knn(centers, points, 6)
    want_i, want_d = brute_force(centers, points, 6)
    assert torch.equal(got.dist2, want_d)
    assert torch.equal(got.indices, want_i)
    assert torch.equal(
        got.indices[200:, :3],
        torch.stack([torch.arange(5), torch.arange(5) + 30, torch.arange(5) + 40], 1),
    )


@pytest.mark.parametrize(
    "centers",
    [
        torch.full((50, 3), 0.25, dtype=torch.float64),  # one point: a box of zero extent
        torch.cat(
            [torch.rand(60, 2, dtype=torch.float64), torch.full((60, 1), 0.5, dtype=torch.float64)],
            1,
        ),  # a plane
        torch.cat(
            [
                torch.linspace(0, 1, 40, dtype=torch.float64)[:, None],
                torch.zeros(40, 2, dtype=torch.float64),
            ],
            1,
        ),
        torch.rand(80, 3, dtype=torch.float64)
        * torch.tensor([1e6, 1.0, 1e-6], dtype=torch.float64),
    ],
    ids=["coincident", "plane", "line", "stretched"],
)
def test_degenerate_center_sets(centers):
    points = torch.cat([queries(300, 3, torch.float64, seed=6), centers[:10]])
    got = knn(centers, points, 5)
    want_i, want_d = brute_force(centers, points, 5)
    assert torch.equal(got.dist2, want_d)
    assert torch.equal(got.indices, want_i)


def test_nan_and_inf_points():
    centers = uniform(40, 3, torch.float64, seed=7)
    points = torch.tensor(
        [
            [0.5, float("nan"), 0.5],
            [float("inf"), 0.5, 0.5],
            [0.5, 0.5, -float("inf")],
            [0.2, 0.3, 0.4],
        ],
        dtype=torch.float64,
    )
    got = knn(centers, points, 3)
    assert (
        torch.equal(got.indices[0], torch.tensor([-1, -1, -1])) and torch.isnan(got.dist2[0]).all()
    )
    assert torch.isinf(got.dist2[1:3]).all() and (got.indices[1:3] >= 0).all()
    assert torch.equal(got.indices[3], brute_force(centers, points[3:], 3)[0][0])


def test_any_grid_gives_the_same_answer():
    """The grid only speeds the search up: a grid that misses most centers (clamped into its
    boundary cells) or has one cell finds the same neighbours."""
    c = _native.capsule
    centers = clustered(400, 3, torch.float64, seed=8)
    points = queries(300, 3, torch.float64, seed=9)
    want_i, _ = brute_force(centers, points, 7)
    for origin, cell, res in [
        ([0.3, 0.3, 0.3], 0.01, [5, 7, 3]),
        ([-50.0, -50.0, -50.0], 200.0, [1, 1, 1]),
        ([0.0, 0.0, 0.0], 0.05, [20, 20, 20]),
    ]:
        n = res[0] * res[1] * res[2]
        start, order = torch.empty(n + 1, dtype=torch.int64), torch.empty(400, dtype=torch.int64)
        idx, d2 = torch.empty(300, 7, dtype=torch.int64), torch.empty(300, 7, dtype=torch.float64)
        _core_ops.knn(
            c(centers), c(points), 7, origin, cell, res, c(start), c(order), c(idx), c(d2)
        )
        assert torch.equal(idx, want_i), (origin, cell, res)
        assert (
            start[0] == 0
            and start[-1] == 400
            and torch.equal(order.sort().values, torch.arange(400))
        )
        assert (start[1:] >= start[:-1]).all()


def test_grid_shape_holds_about_k_centers_per_cell():
    _cell, res = _core_ops.knn_grid_shape([0.0, 0.0, 0.0], [1.0, 2.0, 0.0], 4096, 8)
    assert res[2] == 1 and res[1] == pytest.approx(
        2 * res[0], abs=1
    )  # the flat axis leaves the volume
    assert 4096 / 8 <= res[0] * res[1] <= 4096 / 8 * 1.2
    assert _core_ops.knn_grid_shape([0.0, 0.0], [0.0, 0.0], 10, 2) == (1.0, [1, 1])


def test_result_does_not_depend_on_the_thread_count():
    centers = uniform(3000, 3, torch.float32, seed=10)
    points = queries(5000, 3, torch.float32, seed=11)
    before = _core_ops.num_threads()
    try:
        _core_ops.set_num_threads(1)
        one = knn(centers, points, 8)
        _core_ops.set_num_threads(3)
        three = knn(centers, points, 8)
    finally:
        _core_ops.set_num_threads(before)
    assert torch.equal(one.indices, three.indices) and torch.equal(one.dist2, three.dist2)
