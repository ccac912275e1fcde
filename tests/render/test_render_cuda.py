"""CUDA ray marching and compositing against the CPU kernels: the same per-ray code, so the same
samples (float64 exactly; float32 up to a rare midpoint that lands in the neighbouring cell) and
the same sums and gradients.

Run on a GPU (marked `cuda`: skipped with the reason on machines without one, run by
scripts/gpu-check) and on the CUDA launchers emulated on the host (the ``twin`` fixture)."""

import contextlib

import pytest
import torch

from fields3d.render import GridSpec, OccupancyGrid, composite, march_rays, pack_bits


def rays(n, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    origins = (torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1) * 3
    dirs = (torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1) * 0.8 - origins
    return origins, dirs / dirs.norm(dim=1, keepdim=True)


def spec(device, levels=2, res=16):
    occupied = torch.rand(levels * res**3, generator=torch.Generator().manual_seed(1)) < 0.3
    return GridSpec(
        (0.0, 0.1, 0.0), (0.7, 0.6, 0.5), (res,) * 3, levels, pack_bits(occupied).to(device)
    )


@pytest.mark.parametrize("cone", [0.0, 1 / 128])
def test_march_matches_cpu_in_float64(twin, cone):
    o, d = rays(5000, 0, torch.float64)
    cpu = march_rays(o, d, spec("cpu"), step=0.005, cone=cone)
    with twin.active():
        cuda = march_rays(twin.put(o), twin.put(d), spec(twin.device), step=0.005, cone=cone)
    assert torch.equal(cuda.offsets.cpu(), cpu.offsets)
    assert torch.equal(cuda.ray_ids.cpu(), cpu.ray_ids)
    torch.testing.assert_close(cuda.t_starts.cpu(), cpu.t_starts, rtol=0, atol=1e-12)


def test_march_float32_and_budget(twin):
    o, d = rays(20000, 1, torch.float32)
    cpu = march_rays(o, d, spec("cpu"), step=0.005, max_samples=100_000)
    with twin.active():
        cuda = march_rays(
            twin.put(o), twin.put(d), spec(twin.device), step=0.005, max_samples=100_000
        )
    assert cuda.n_samples <= 100_000 and cuda.rays_dropped > 0
    same = (cuda.counts.cpu() == cpu.counts).float().mean()
    assert same > 0.999


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_composite_matches_cpu(twin, dtype):
    g = torch.Generator().manual_seed(2)
    counts = torch.randint(0, 200, (3000,), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    n = int(offsets[-1])
    ts = torch.rand(n, generator=g, dtype=dtype)
    te = ts + 0.01
    sigmas = torch.rand(n, generator=g, dtype=dtype) * 30
    values = torch.rand(n, 4, generator=g, dtype=dtype)
    results = []
    for dev, context in (("cpu", contextlib.nullcontext()), (twin.device, twin.active())):
        with context:
            s, v = sigmas.to(dev).requires_grad_(True), values.to(dev).requires_grad_(True)
            r = composite(s, v, ts.to(dev), te.to(dev), offsets.to(dev))
            (r.out.square().sum() + r.opacity.sum() + r.weights.sum()).backward()
        results.append([t.detach().cpu() for t in (r.out, r.opacity, r.weights, s.grad, v.grad)])
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **tol)


def test_occupancy_grid_on_cuda(twin):
    cpu = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=32, levels=2)
    cpu.update(lambda p: (p.norm(dim=1) < 0.5).float() * 10, warmup=True)
    o, d = (twin.put(t) for t in rays(1000, 3, torch.float32))
    with twin.active():
        grid = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=32, levels=2).to(twin.device)
        grid.update(lambda p: (p.norm(dim=1) < 0.5).float() * 10, warmup=True)
        s = march_rays(o, d, grid.spec(), step=0.01)
    assert abs(grid.occupancy_fraction() - cpu.occupancy_fraction()) < 0.01
    assert s.n_samples > 0 and (s.midpoints(o, d).norm(dim=1) < 0.5 + 0.2).all()
