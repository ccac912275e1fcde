"""CUDA dense grid, tri-plane and simplex grid against the CPU kernels (same per-element code,
different launch and atomics).

Tests taking ``twin`` run on a GPU (marked `cuda`: skipped with the reason on machines without
one, run by scripts/gpu-check) and on the CUDA launchers emulated on the host; the others need a
GPU."""

import pytest
import torch
from lattice_cases import CASES, IDS, random_table

from fields3d.encodings import DenseGrid, SimplexGrid, TriPlane
from fields3d.errors import InputError


def all_derivatives(x, table, config, encode):
    """Values, first derivatives and an eikonal-style second-order gradient."""
    x = x.clone().requires_grad_()
    table = table.clone().requires_grad_()
    y = encode(x, table, config)
    dy = torch.cos(torch.arange(y.shape[1], device=y.device, dtype=y.dtype))
    gx, gt = torch.autograd.grad((y * dy).sum(), (x, table), create_graph=True)
    eik_t, eik_x = torch.autograd.grad(((gx.norm(dim=-1) - 1) ** 2).mean(), (table, x))
    return [t.detach().cpu() for t in (y, gx, gt, eik_t, eik_x)]


@pytest.mark.parametrize("name,config,encode,reference", CASES, ids=IDS)
def test_cuda_matches_cpu(twin, name, config, encode, reference):
    gen = torch.Generator().manual_seed(len(name))
    table = random_table(config)
    x = torch.rand(4099, config.n_input_dims, generator=gen)
    x[7] = float("nan")
    x[8] = torch.linspace(-0.5, 1.5, config.n_input_dims)
    cpu = all_derivatives(x, table, config, encode)
    with twin.active():
        gpu = all_derivatives(twin.put(x), twin.put(table), config, encode)
    for what, a, b in zip(["y", "dx", "dtable", "eikonal dtable", "eikonal dx"], cpu, gpu):
        torch.testing.assert_close(
            b, a, rtol=1e-4, atol=1e-4, equal_nan=True, msg=lambda m: f"{what}: {m}"
        )


@pytest.mark.parametrize(
    "make", [lambda: DenseGrid(3, 8, 4), lambda: TriPlane(8, 4), lambda: SimplexGrid(3, 4)]
)
@pytest.mark.parametrize("n", [0, 1])
def test_cuda_zero_and_one_points(twin, make, n):
    with twin.active():
        enc = make().to(twin.device)
        x = torch.rand(n, 3, device=twin.device, requires_grad=True)
        enc(x).sum().backward()
    assert x.grad.shape == (n, 3)


@pytest.mark.cuda
def test_cuda_runs_on_the_current_stream():
    enc = SimplexGrid(3, device="cuda")
    x = torch.rand(1 << 18, 3, device="cuda")
    expected = enc(x)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        y = enc(x)
    stream.synchronize()
    torch.testing.assert_close(y, expected)


@pytest.mark.cuda
def test_cuda_rejects_float64():
    enc = DenseGrid(3, 4, 2, device="cuda").double()
    with pytest.raises(InputError) as err:
        enc(torch.rand(3, 3, dtype=torch.float64, device="cuda"))
    assert (
        str(err.value)
        == "CUDA dense grid kernels take float32, got float64; use float64 on the CPU only"
    )
