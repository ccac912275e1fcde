"""CUDA hash grid against the CPU kernels (same per-element code, different launch and atomics).

Tests taking ``twin`` run on a GPU (marked `cuda`: skipped with the reason on machines without
one, run by scripts/gpu-check) and on the CUDA launchers emulated on the host; the others need a
GPU."""

import itertools

import pytest
import torch

from fields3d.encodings import HashGrid, HashGridConfig, hash_grid_encode
from fields3d.errors import InputError

CASES = list(itertools.product([1, 2, 3, 4], [1, 2, 4, 8], ["linear", "smoothstep"]))


def all_derivatives(x, table, config, head):
    """Values, first derivatives and the eikonal second-order table gradient."""
    x = x.clone().requires_grad_()
    table = table.clone().requires_grad_()
    y = hash_grid_encode(x, table, config)
    dy = torch.cos(torch.arange(y.shape[1], device=y.device, dtype=y.dtype))
    gx, gt = torch.autograd.grad((y * dy).sum(), (x, table), create_graph=True)
    sdf_grad = torch.autograd.grad((y @ head).sum(), x, create_graph=True)[0]
    eik_t, eik_x = torch.autograd.grad(((sdf_grad.norm(dim=-1) - 1) ** 2).mean(), (table, x))
    return [t.detach().cpu() for t in (y, gx, gt, eik_t, eik_x)]


@pytest.mark.parametrize("d,f,interp", CASES)
def test_cuda_matches_cpu(twin, d, f, interp):
    config = HashGridConfig(d, 6, f, [6, 12, 17][(d + f) % 3], 4, 1.8, interp)
    gen = torch.Generator().manual_seed(d * 100 + f)
    table = torch.rand(config.n_entries, f, generator=gen) * 2 - 1
    x = torch.rand(4099, d, generator=gen)
    x[7] = float("nan")
    x[8] = torch.linspace(-0.5, 1.5, d)
    head = torch.randn(config.n_output_dims, generator=gen)
    cpu = all_derivatives(x, table, config, head)
    with twin.active():
        gpu = all_derivatives(twin.put(x), twin.put(table), config, twin.put(head))
    for name, a, b in zip(["y", "dx", "dtable", "eikonal dtable", "eikonal dx"], cpu, gpu):
        torch.testing.assert_close(
            b, a, rtol=1e-4, atol=1e-4, equal_nan=True, msg=lambda m: f"{name}: {m}"
        )


@pytest.mark.parametrize("n", [0, 1])
def test_cuda_zero_and_one_points(twin, n):
    with twin.active():
        grid = HashGrid(3, n_levels=4, log2_hashmap_size=8, device=twin.device)
        x = torch.rand(n, 3, device=twin.device, requires_grad=True)
        grid(x).sum().backward()
    assert x.grad.shape == (n, 3)


@pytest.mark.cuda
def test_cuda_runs_on_the_current_stream():
    grid = HashGrid(3, device="cuda")
    x = torch.rand(1 << 18, 3, device="cuda")
    expected = grid(x)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        y = grid(x)
    stream.synchronize()
    torch.testing.assert_close(y, expected)


@pytest.mark.cuda
def test_cuda_rejects_float64():
    config = HashGridConfig(3, 2, 2, 6)
    table = torch.zeros(config.n_entries, 2, dtype=torch.float64, device="cuda")
    with pytest.raises(InputError) as err:
        hash_grid_encode(torch.rand(3, 3, dtype=torch.float64, device="cuda"), table, config)
    assert (
        str(err.value)
        == "CUDA hash grid kernels take float32, got float64; use float64 on the CPU only"
    )
