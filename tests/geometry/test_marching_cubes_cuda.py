"""CUDA marching cubes against the CPU kernels: the same per-cell code, so the same faces in the
same order and the same vertices (CUDA rounds like the CPU; 1e-5 leaves room for a host compiler
that fuses multiply-adds).

Tests taking ``twin`` run on a GPU (marked `cuda`: skipped with the reason on machines without
one, run by scripts/gpu-check) and on the CUDA launchers emulated on the host; the others need a
GPU."""

import pytest
import torch

from fields3d.geometry.marching_cubes import marching_cubes, mesh_field


def volumes():
    g = torch.Generator().manual_seed(0)
    axis = torch.arange(50, dtype=torch.float64) - 24.3
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    sphere = (x * x + y * y + z * z).sqrt() - 17.2
    torus = torch.hypot((x * x + y * y).sqrt() - 14.0, z) - 5.1
    noise = (
        torch.rand(33, 40, 70, generator=g, dtype=torch.float64) * 2 - 1
    )  # rows longer than a warp
    quantized = torch.round(noise[:20, :21, :37] * 2) / 2  # values exactly at the level
    return {"sphere": sphere, "torus": torus, "noise": noise, "quantized": quantized}


def assert_same_mesh(cuda, cpu):
    assert torch.equal(cuda[1].cpu(), cpu[1])
    torch.testing.assert_close(cuda[0].cpu(), cpu[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["sphere", "torus", "noise", "quantized"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(twin, name, dtype):
    volume = volumes()[name].to(dtype)
    kwargs = {"origin": (1.0, -2.0, 0.5), "spacing": (0.5, 1.0, 2.0)}
    cpu = marching_cubes(volume, 0.0, **kwargs)
    with twin.active():
        cuda = marching_cubes(twin.put(volume), 0.0, **kwargs)
    assert cuda[0].device.type == twin.device and cuda[1].device.type == twin.device
    assert cuda[0].dtype == dtype and cuda[1].dtype == torch.int64
    assert_same_mesh(cuda, cpu)


def test_cuda_empty_and_smallest(twin):
    volume = torch.ones(2, 2, 2)
    volume[0, 0, 0] = -1
    cpu = marching_cubes(volume)
    with twin.active():
        for empty in (torch.ones(2, 2, 2), torch.ones(40, 3, 65)):
            verts, faces = marching_cubes(twin.put(empty))
            assert verts.shape == (0, 3) and faces.shape == (0, 3)
        smallest = marching_cubes(twin.put(volume))
    assert_same_mesh(smallest, cpu)


@pytest.mark.cuda
def test_cuda_on_a_side_stream():
    volume = volumes()["torus"].float().cuda()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = marching_cubes(volume)
    stream.synchronize()
    assert_same_mesh(out, marching_cubes(volume.cpu()))


def sdf(x):
    # float64 then rounded: the same float32 values on either device
    d = x.double() - torch.tensor([0.05, -0.03, 0.02], dtype=torch.float64, device=x.device)
    return ((d * d).sum(dim=-1).sqrt() - 0.61).float()


@pytest.mark.parametrize("narrow_band", [True, False])
def test_mesh_field_cuda_matches_cpu(twin, narrow_band):
    bounds = ((-1, -1, -1), (1, 1, 1))
    cpu = mesh_field(sdf, bounds, 70, narrow_band=narrow_band)
    with twin.active():
        cuda = mesh_field(sdf, bounds, 70, narrow_band=narrow_band, device=twin.device)
    assert_same_mesh(cuda, cpu)
