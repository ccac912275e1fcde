"""Mosaic-SDF evaluation: values and derivatives against a loop over volumes, undefined points, errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from fields3d.errors import InputError
from fields3d.geometry.mosaic_sdf import MosaicSDF, mosaic_sdf


def reference(x, centres, scales, values):
    """The blended field point by point, volume by volume, with the trilinear weights spelled out."""
    k = values.shape[1]
    out, defined = [], []
    for p in x:
        num = den = p.sum() * 0
        for c, s, v in zip(centres, scales, values):
            u = (p - c) / s
            w = 1 - u.abs().max()
            if w <= 0:
                continue
            t = (u + 1) * (k - 1) / 2
            i0 = [min(max(int(torch.floor(t[d])), 0), k - 2) for d in range(3)]
            f = [t[d] - i0[d] for d in range(3)]
            value = 0
            for corner in itertools.product((0, 1), repeat=3):
                weight = 1
                for d in range(3):
                    weight = weight * (f[d] if corner[d] else 1 - f[d])
                value = value + weight * v[i0[0] + corner[0], i0[1] + corner[1], i0[2] + corner[2]]
            num, den = num + w * value, den + w
        defined.append(bool(den > 0))
        out.append(num / den if den > 0 else p.sum() * 0 + float("nan"))
    return torch.stack(out), torch.tensor(defined)


def random_mosaic(n=6, k=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1
    scales = 0.4 + 0.5 * torch.rand(n, generator=g, dtype=dtype)
    values = torch.randn(n, k, k, k, generator=g, dtype=dtype)
    return centres, scales, values


@pytest.mark.parametrize(("n", "k"), [(1, 2), (6, 4), (12, 7)])
def test_values_match_the_loop_over_volumes(n, k):
    centres, scales, values = random_mosaic(n, k, seed=n)
    x = torch.rand(300, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    x = x - 1.5
    sdf, defined = mosaic_sdf(x, centres, scales, values, chunk=64)
    want, want_defined = reference(x, centres, scales, values)
    assert torch.equal(defined, want_defined) and 0 < int(defined.sum()) < len(x)
    torch.testing.assert_close(sdf[defined], want[defined], rtol=1e-12, atol=1e-12)
    assert torch.isnan(sdf[~defined]).all()


def test_float32_matches_float64():
    centres, scales, values = random_mosaic(8, 5)
    x = torch.rand(500, 3, dtype=torch.float64) * 2 - 1
    sdf64, d64 = mosaic_sdf(x, centres, scales, values)
    sdf32, d32 = mosaic_sdf(x.float(), centres.float(), scales.float(), values.float())
    both = d64 & d32
    assert (d64 != d32).sum() <= 2  # points on a cube's face may fall either side in float32
    torch.testing.assert_close(sdf32[both].double(), sdf64[both], rtol=0, atol=1e-5)


def test_gradients_match_finite_differences():
    centres, scales, values = random_mosaic(5, 3, seed=3)
    # points well inside volume 0 and 1 (defined, away from the cubes' faces)
    g = torch.Generator().manual_seed(4)
    x = torch.cat(
        [centres[:2] + 0.3 * scales[:2, None] * torch.randn(2, 3, generator=g, dtype=torch.float64)]
        * 2
    )
    leaves = [t.clone().requires_grad_(True) for t in (x, centres, scales, values)]

    def f(x, c, s, v):
        return mosaic_sdf(x, c, s, v).sdf

    assert mosaic_sdf(*leaves).defined.all()
    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-7)


def test_gradients_match_the_reference():
    centres, scales, values = random_mosaic(6, 4, seed=5)
    x = torch.rand(40, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 2 - 1
    ours = [t.clone().requires_grad_(True) for t in (x, centres, scales, values)]
    ref = [t.clone().requires_grad_(True) for t in (x, centres, scales, values)]
    sdf, defined = mosaic_sdf(*ours)
    want, _ = reference(*ref)
    sdf[defined].sum().backward()
    want[defined].sum().backward()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)


def test_undefined_points_are_reported_and_get_no_gradient():
    centres = torch.zeros(1, 3, requires_grad=True)
    scales = torch.ones(1)
    values = torch.ones(1, 2, 2, 2, requires_grad=True)
    x = torch.tensor([[0.5, 0, 0], [1.0, 0, 0], [3.0, 0, 0], [float("nan"), 0, 0], [1e30, 0, 0]])
    sdf, defined = mosaic_sdf(x, centres, scales, values)
    assert defined.tolist() == [True, False, False, False, False]
    assert sdf[0] == 1 and torch.isnan(sdf[1:]).all()
    sdf[defined].sum().backward()
    assert values.grad.sum() == 1 and torch.isfinite(centres.grad).all()


def test_no_points():
    sdf, defined = mosaic_sdf(
        torch.zeros(0, 3), torch.zeros(2, 3), torch.ones(2), torch.zeros(2, 2, 2, 2)
    )
    assert sdf.shape == (0,) and defined.shape == (0,) and defined.dtype == torch.bool


def test_module_and_tensor_form():
    centres, scales, values = random_mosaic(3, 3, dtype=torch.float32)
    mosaic = MosaicSDF(centres, scales, values)
    assert [n for n, _ in mosaic.named_parameters()] == ["centres", "scales", "values"]
    t = mosaic.tensor()
    assert t.shape == (3, 4 + 27)
    assert torch.equal(MosaicSDF.from_tensor(t, 3).tensor(), t)
    with pytest.raises(InputError) as info:
        MosaicSDF.from_tensor(t, 4)
    assert str(info.value) == "a Mosaic-SDF of resolution 4 has the form (K, 68), got (3, 31)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (
                torch.zeros(4, 3, dtype=torch.float64),
                torch.zeros(2, 3),
                torch.ones(2),
                torch.zeros(2, 2, 2, 2),
            ),
            "x must be float32 of shape (N, 3) like centres, got float64 (4, 3)",
        ),
        (
            (torch.zeros(4, 2), torch.zeros(2, 3), torch.ones(2), torch.zeros(2, 2, 2, 2)),
            "x must be float32 of shape (N, 3) like centres, got float32 (4, 2)",
        ),
        (
            (torch.zeros(4, 3), torch.zeros(2, 3), torch.ones(3), torch.zeros(2, 2, 2, 2)),
            "centres, scales and values must be float32 of shape (2, 3), (2,) and (2, k, k, k) with "
            "k >= 2, got float32 (2, 3), float32 (3,), float32 (2, 2, 2, 2)",
        ),
        (
            (torch.zeros(4, 3), torch.zeros(2, 3), torch.ones(2), torch.zeros(2, 1, 1, 1)),
            "centres, scales and values must be float32 of shape (2, 3), (2,) and (2, k, k, k) with "
            "k >= 2, got float32 (2, 3), float32 (2,), float32 (2, 1, 1, 1)",
        ),
        (
            (
                torch.zeros(4, 3),
                torch.zeros(2, 3),
                torch.tensor([1.0, 0.0]),
                torch.zeros(2, 2, 2, 2),
            ),
            "scales must be finite and > 0, got a minimum of 0.0",
        ),
        (
            (
                torch.zeros(4, 3),
                torch.zeros(2, 3, dtype=torch.int64),
                torch.ones(2),
                torch.zeros(2, 2, 2, 2),
            ),
            "centres must be float32 or float64 of shape (K, 3), got int64 (2, 3)",
        ),
        (
            ([[0.0, 0.0, 0.0]], torch.zeros(2, 3), torch.ones(2), torch.zeros(2, 2, 2, 2)),
            "x must be float32 of shape (N, 3) like centres, got list",
        ),
    ],
)
def test_bad_arguments(args, message):
    with pytest.raises(InputError) as info:
        mosaic_sdf(*args)
    assert str(info.value) == message


def test_volumes_far_apart_and_of_very_different_sizes():
    centres = torch.tensor([[0.0, 0.0, 0.0], [1e9, 0.0, 0.0], [0.5, 0.0, 0.0]], dtype=torch.float64)
    scales = torch.tensor([1e-3, 1e3, 1e-3], dtype=torch.float64)
    values = torch.arange(3.0, dtype=torch.float64)[:, None, None, None].expand(3, 2, 2, 2)
    x = torch.tensor(
        [[0.0, 0.0, 0.0], [1e9 + 10, 0, 0], [0.5, 0, 0], [0.25, 0, 0]], dtype=torch.float64
    )
    sdf, defined = mosaic_sdf(x, centres, scales, values.contiguous())
    assert defined.tolist() == [True, True, True, False] and sdf[:3].tolist() == pytest.approx(
        [0, 1, 2]
    )
