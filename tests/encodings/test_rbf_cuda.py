"""CUDA fused RBF evaluation (forward, backward, double backward) and RBF encoding against the
CPU (same per-point code, different launch). The neighbour search's CUDA tests are in
tests/geometry/test_knn_cuda.py.

Run on a GPU (marked `cuda`: skipped with the reason on machines without one, run by
scripts/gpu-check) and on the CUDA launchers emulated on the host (the ``twin`` fixture)."""

import pytest
import torch
from test_rbf import random_params, random_points

from fields3d.encodings import RBFConfig, RBFEncoding, rbf_encode
from fields3d.encodings.rbf_eval import rbf_evaluate_fused
from fields3d.geometry.knn import knn


def all_derivatives(x, params, config):
    x = x.clone().requires_grad_()
    params = [p.detach().clone().requires_grad_() for p in params]
    y = rbf_encode(x, *params, config)
    head = torch.cos(torch.arange(y.shape[1], device=y.device, dtype=y.dtype))
    (g,) = torch.autograd.grad((y @ head).sum(), x, create_graph=True)
    eik = torch.autograd.grad(((g.norm(dim=-1) - 1) ** 2).mean(), (x, *params))
    return [t.detach().cpu() for t in (y, g, *eik)]


@pytest.mark.parametrize("shape", ["isotropic", "diagonal", "full"])
def test_cuda_encoding_matches_cpu(twin, shape):
    config = RBFConfig(3, 500, 8, 8, shape, "inverse_quadratic", (1.0, 2.0, 4.0))
    params = [p.detach().float() for p in random_params(config, seed=3)]
    x = random_points(config, 4099, torch.float32, seed=4)
    x[5] = float("nan")
    cpu = all_derivatives(x, params, config)
    with twin.active():
        gpu = all_derivatives(twin.put(x), [twin.put(p) for p in params], config)
    for what, a, b in zip(
        ["y", "dx", "eik dx", "eik centers", "eik shapes", "eik weights"], cpu, gpu
    ):
        torch.testing.assert_close(
            b, a, rtol=1e-4, atol=1e-4, equal_nan=True, msg=lambda m: f"{what}: {m}"
        )


@pytest.mark.parametrize("n", [0, 1])
def test_cuda_zero_and_one_points(twin, n):
    with twin.active():
        enc = RBFEncoding(3, 64, 4, 4, device=twin.device)
        x = torch.rand(n, 3, device=twin.device, requires_grad=True)
        enc(x).sum().backward()
    assert x.grad.shape == (n, 3)


def test_cuda_init_from_points_matches_cpu(twin):
    """Same seeds (drawn on the CPU); after Lloyd, a near tie may assign a point differently, so
    the centers are compared through their quantisation error."""
    points = torch.rand(20000, 3, generator=torch.Generator().manual_seed(5))

    def init(device, iters):
        enc = RBFEncoding(3, 256, 4, 8, device=device)
        return enc.init_from_points(
            points.to(device), iters=iters, generator=torch.Generator().manual_seed(0)
        )

    cpu0, cpu = init("cpu", 0).centers, init("cpu", 10).centers.detach()
    with twin.active():
        gpu0, gpu = init(twin.device, 0).centers.cpu(), init(twin.device, 10).centers.detach().cpu()
    assert torch.equal(gpu0, cpu0)
    err = [float((torch.cdist(points, c).min(dim=1).values ** 2).mean()) for c in (cpu, gpu)]
    assert err[1] == pytest.approx(err[0], rel=0.02)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", ["isotropic", "diagonal", "full"])
@pytest.mark.parametrize("kernel,freqs", [("inverse_quadratic", (1.0, 2.0, 4.0)), ("gaussian", ())])
def test_cuda_fused_evaluation_matches_cpu(twin, shape, kernel, freqs, dtype):
    """The fused op alone, same neighbours on both devices: y and all first derivatives (the CUDA
    backward scatters with atomics, so the sums' order differs from the CPU's)."""
    config = RBFConfig(3, 500, 8, 8, shape, kernel, freqs)
    params = [p.detach().to(dtype) for p in random_params(config, seed=5)]
    x = random_points(config, 5003, dtype, seed=6)
    idx = knn(params[0], x, config.k).indices
    dy = torch.randn(5003, 8, dtype=dtype, generator=torch.Generator().manual_seed(7))

    def run(device):
        inputs = [t.to(device).requires_grad_() for t in (x, *params)]
        y = rbf_evaluate_fused(inputs[0], idx.to(device), *inputs[1:], config)
        return [t.cpu() for t in (y, *torch.autograd.grad((y * dy.to(device)).sum(), inputs))]

    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
    cpu = run("cpu")
    with twin.active():
        gpu = run(twin.device)
    for what, a, b in zip(["y", "dx", "dcenters", "dshapes", "dweights"], cpu, gpu):
        torch.testing.assert_close(b, a, **tol, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", ["isotropic", "diagonal", "full"])
@pytest.mark.parametrize("kernel,freqs", [("inverse_quadratic", (1.0, 2.0, 4.0)), ("gaussian", ())])
def test_cuda_double_backward_matches_cpu(twin, shape, kernel, freqs, dtype):
    """The core's double backward on both devices, same neighbours: incoming gradients of dx,
    dcenters and dweights; gradients w.r.t. dy, x and the parameters (CUDA: atomics)."""
    config = RBFConfig(3, 500, 8, 8, shape, kernel, freqs)
    params = [p.detach().to(dtype) for p in random_params(config, seed=9)]
    x = random_points(config, 5003, dtype, seed=10)
    idx = knn(params[0], x, config.k).indices
    gen = torch.Generator().manual_seed(11)
    dy, ddx = (
        torch.randn(5003, 8, dtype=dtype, generator=gen),
        torch.randn(5003, 3, dtype=dtype, generator=gen),
    )
    ddc, ddw = (
        torch.randn(500, 3, dtype=dtype, generator=gen),
        torch.randn(500, 8, dtype=dtype, generator=gen),
    )

    def run(device):
        leaves = [t.to(device).requires_grad_() for t in (dy, x, *params)]
        y = rbf_evaluate_fused(leaves[1], idx.to(device), *leaves[2:], config)
        gx, gc, _, gw = torch.autograd.grad(y, leaves[1:], leaves[0], create_graph=True)
        loss = (
            (gx * ddx.to(device)).sum() + (gc * ddc.to(device)).sum() + (gw * ddw.to(device)).sum()
        )
        return [t.cpu() for t in torch.autograd.grad(loss, leaves)]

    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
    cpu = run("cpu")
    with twin.active():
        gpu = run(twin.device)
    for what, a, b in zip(["ddy", "x", "centers", "shapes", "weights"], cpu, gpu):
        assert a.abs().sum() > 0, what
        torch.testing.assert_close(b, a, **tol, msg=lambda m: f"{what}: {m}")


def test_cuda_fused_evaluation_refuses_out_of_range_indices(twin):
    config = RBFConfig(3, 50, 4, 4, "diagonal", "gaussian", (1.0,))
    params = [twin.put(p.detach().float()) for p in random_params(config, seed=8)]
    x = torch.rand(10, 3, device=twin.device)
    idx = torch.zeros(10, 4, dtype=torch.int64, device=twin.device)
    idx[3, 1] = 50
    idx[7, 0] = -1
    with twin.active():
        with pytest.raises(
            ValueError, match=r"^idx must hold values in \[0, M\) = \[0, 50\), got 2 out of range$"
        ):
            rbf_evaluate_fused(x, idx, *params, config)
