"""CUDA neighbour search against the CPU (same per-query code, different launch; the grid built
by the device's counting sort).

Run on a GPU (marked `cuda`: skipped with the reason on machines without one, run by
scripts/gpu-check) and on the CUDA launchers emulated on the host (the ``twin`` fixture)."""

import pytest
import torch
from test_knn import clustered, queries, uniform

from fields3d import _core_ops, _native
from fields3d.geometry.knn import knn


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("make", [uniform, clustered], ids=["uniform", "clustered"])
@pytest.mark.parametrize("k", [1, 8, 32])
def test_cuda_knn_matches_cpu(twin, dims, make, k):
    centers = make(4000, dims, torch.float32, seed=k)
    points = queries(20000, dims, torch.float32, seed=dims)
    points[7] = float("nan")
    cpu = knn(centers, points, k)
    with twin.active():
        gpu = knn(twin.put(centers), twin.put(points), k)
    # float32 distances may differ in the last bits (fused multiply-adds on the GPU): the distances
    # agree closely, and where no near tie leaves the order open, so do the centers
    torch.testing.assert_close(gpu.dist2.cpu(), cpu.dist2, rtol=1e-5, atol=1e-7, equal_nan=True)
    d = cpu.dist2[~torch.isnan(cpu.dist2[:, 0])]
    clear = torch.ones(len(points), dtype=torch.bool)
    if k > 1:
        gaps = (cpu.dist2[:, 1:] - cpu.dist2[:, :-1]).min(dim=1).values
        clear = ~(gaps <= 1e-5 * cpu.dist2[:, -1])  # NaN rows stay in: both give -1
    assert clear.sum() > 0.5 * len(points) and len(d) == len(points) - 1
    assert torch.equal(gpu.indices.cpu()[clear], cpu.indices[clear])


def test_cuda_knn_float64_is_exact(twin):
    centers = clustered(3000, 3, torch.float64, seed=1)
    points = queries(5000, 3, torch.float64, seed=2)
    cpu = knn(centers, points, 8)
    with twin.active():
        gpu = knn(twin.put(centers), twin.put(points), 8)
    assert torch.equal(gpu.indices.cpu(), cpu.indices)
    torch.testing.assert_close(gpu.dist2.cpu(), cpu.dist2, rtol=1e-13, atol=0)


def grid_of(centers, k):
    """The core's grid (cell_start, order) for ``centers``, built on their device."""
    m, d = centers.shape
    box = torch.cat([centers.amin(dim=0), centers.amax(dim=0)]).tolist()
    cell, res = _core_ops.knn_grid_shape(box[:d], box[d:], m, k)
    n_cells = 1
    for r in res:
        n_cells *= r
    dev = centers.device
    cell_start = torch.empty(n_cells + 1, dtype=torch.int64, device=dev)
    order = torch.empty(m, dtype=torch.int64, device=dev)
    points = centers[:0]
    idx, d2 = (
        torch.empty(0, k, dtype=torch.int64, device=dev),
        torch.empty(0, k, dtype=centers.dtype, device=dev),
    )
    c = _native.capsule
    _core_ops.knn(
        c(centers),
        c(points),
        k,
        box[:d],
        cell,
        res,
        c(cell_start),
        c(order),
        c(idx),
        c(d2),
        _native.stream_of(dev),
    )
    return cell_start.cpu(), order.cpu()


@pytest.mark.parametrize("make", [uniform, clustered], ids=["uniform", "clustered"])
def test_cuda_builds_the_same_grid_as_the_cpu(twin, make):
    """The device's counting sort: the same cell starts, and each cell the same centers (in an
    order set by its atomics; the CPU keeps index order)."""
    centers = make(200_000, 3, torch.float32, seed=9)
    centers[:5000] = centers[0]  # 5000 duplicates: one cell takes many atomic increments
    cpu_start, cpu_order = grid_of(centers, 8)
    with twin.active():
        gpu_start, gpu_order = grid_of(twin.put(centers), 8)
    assert torch.equal(gpu_start, cpu_start)
    assert int(gpu_start[-1]) == len(centers)
    cell = torch.repeat_interleave(torch.arange(len(cpu_start) - 1), cpu_start[1:] - cpu_start[:-1])
    # sorting by (cell, center) must give the CPU's order, which is cell by cell in index order
    key = cell * len(centers) + gpu_order
    assert torch.equal(gpu_order[torch.argsort(key)], cpu_order)
