"""Mosaic-SDF on a GPU against the CPU: the same torch ops on another device (marked ``cuda``:
skipped with the reason on machines without one, run by scripts/gpu-check)."""

import pytest
import torch
import trimesh
from test_mosaic_sdf import random_mosaic

from fields3d.geometry.mosaic_convert import mesh_mosaic, mosaic_from_mesh
from fields3d.geometry.mosaic_sdf import mosaic_sdf


@pytest.mark.cuda
def test_cuda_values_and_gradients_match_cpu():
    params = random_mosaic(40, 5, dtype=torch.float32, seed=2)
    x = torch.rand(20000, 3, generator=torch.Generator().manual_seed(3)) * 3 - 1.5
    cpu = [t.clone().requires_grad_(True) for t in (x, *params)]
    gpu = [t.cuda().requires_grad_(True) for t in (x, *params)]
    sdf, defined = mosaic_sdf(*cpu)
    sdf_gpu, defined_gpu = mosaic_sdf(*gpu)
    both = defined & defined_gpu.cpu()
    assert (defined != defined_gpu.cpu()).sum() <= 5  # points on a cube's face, rounding apart
    torch.testing.assert_close(sdf_gpu.cpu()[both], sdf[both], rtol=1e-5, atol=1e-5)
    sdf[both].sum().backward()
    sdf_gpu[both.cuda()].sum().backward()
    for a, b in zip(cpu[1:], gpu[1:]):
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.cuda
def test_cuda_meshing_matches_cpu():
    mosaic = mosaic_from_mesh(trimesh.creation.icosphere(subdivisions=3), 128, 5)
    verts, faces, undefined = mesh_mosaic(mosaic, 48)
    verts_gpu, faces_gpu, undefined_gpu = mesh_mosaic(mosaic.cuda(), 48)
    assert faces_gpu.shape == faces.shape and undefined_gpu == pytest.approx(undefined, abs=1e-3)
    torch.testing.assert_close(verts_gpu.cpu(), verts, rtol=0, atol=1e-4)
