"""VoroMesh fitting: the VoroLoss against a loop over bisector planes, its derivatives by
gradcheck, the grid initialisation against brute force, and a fit that lowers the loss and
brings the extracted mesh closer to the target."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from fields3d.errors import InputError
from fields3d.geometry import mesh_metrics
from fields3d.geometry.voromesh import VoronoiDiagram, check_surface
from fields3d.geometry.voromesh_fit import (
    fit_generators,
    grid_generators,
    nearest_generators,
    resolution_for,
    voro_loss,
)
from fields3d.pipelines._common import torch_threads


def reference_loss(points: np.ndarray, generators: np.ndarray, k: int) -> float:
    """One point at a time: its nearest generator by a full sort, the bisector planes with the
    next k - 1 as |(p - (g_i + g_j) / 2) . (g_j - g_i)| / |g_j - g_i|, the smallest squared."""
    total = 0.0
    for p in points:
        order = np.argsort(np.linalg.norm(generators - p, axis=1))
        gi = generators[order[0]]
        best = np.inf
        for j in order[1:k]:
            gj = generators[j]
            d = abs(np.dot(p - (gi + gj) / 2, gj - gi)) / np.linalg.norm(gj - gi)
            best = min(best, d * d)
        total += best
    return total / len(points)


@pytest.mark.parametrize("k", [2, 5, 11])
def test_loss_matches_a_loop_over_bisector_planes(k):
    rng = np.random.default_rng(k)
    generators, points = rng.uniform(-1, 1, (40, 3)), rng.uniform(-1, 1, (300, 3))
    ids = torch.from_numpy(nearest_generators(points, generators, k))
    loss = voro_loss(torch.from_numpy(points), torch.from_numpy(generators), ids)
    assert loss.item() == pytest.approx(reference_loss(points, generators, k), rel=1e-12)


def test_nearest_generators_match_a_full_sort():
    rng = np.random.default_rng(0)
    generators, points = rng.uniform(-1, 1, (50, 3)), rng.uniform(-1, 1, (200, 3))
    ids = nearest_generators(points, generators, 6)
    full = np.argsort(np.linalg.norm(points[:, None] - generators[None], axis=2), axis=1)
    np.testing.assert_array_equal(ids, full[:, :6])
    assert nearest_generators(points, generators[:3], 11).shape == (200, 3)  # k capped at N


def test_loss_gradients_by_gradcheck():
    rng = np.random.default_rng(1)
    generators = torch.tensor(rng.uniform(-1, 1, (12, 3)), requires_grad=True)
    points = torch.tensor(rng.uniform(-1, 1, (30, 3)), requires_grad=True)
    ids = torch.from_numpy(
        nearest_generators(points.detach().numpy(), generators.detach().numpy(), 5)
    )
    assert torch.autograd.gradcheck(lambda p, g: voro_loss(p, g, ids), (points, generators))
    assert torch.autograd.gradgradcheck(lambda p, g: voro_loss(p, g, ids), (points, generators))


def test_grid_generators_are_the_corners_of_the_voxels_holding_points():
    rng = np.random.default_rng(2)
    points = rng.uniform(-1, 1, (200, 3)) * [1, 0.3, 0.3]
    got = grid_generators(points, 9)
    spacing = 2 / 8
    expected = set()
    for p in points:
        v = np.minimum(np.floor((p + 1) / spacing), 7).astype(int)
        for corner in np.ndindex(2, 2, 2):
            expected.add(tuple(v + corner))
    assert {tuple(np.rint((g + 1) / spacing).astype(int)) for g in got} == expected
    assert len(got) == len(expected)


def test_resolution_for_picks_the_nearest_count():
    rng = np.random.default_rng(3)
    sphere = rng.normal(size=(5000, 3))
    sphere = 0.8 * sphere / np.linalg.norm(sphere, axis=1, keepdims=True)
    res = resolution_for(sphere, 3000)
    counts = {r: len(grid_generators(sphere, r)) for r in range(res - 3, res + 4)}
    assert min(counts, key=lambda r: abs(counts[r] - 3000)) == res


def sphere_case(radius: float = 0.7):
    ball = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    points = trimesh.sample.sample_surface(ball, 6000, seed=0)[0]
    return ball, points


def voromesh_of(generators: np.ndarray, radius: float):
    diagram = VoronoiDiagram(generators)
    inside = np.linalg.norm(diagram.centroids(), axis=1) < radius
    return diagram.surface(inside)


def test_fit_lowers_the_loss_and_the_chamfer_distance():
    ball, points = sphere_case()
    start = grid_generators(points, 12)
    with torch_threads(1):  # as the pipeline runs it: small ops, a busy machine
        fitted, losses = fit_generators(start, points, steps=120, lr=0.0775 * 2 / 11, seed=0)
    assert len(losses) == 120 and losses[-1] < 0.05 * losses[0]
    before = mesh_metrics(voromesh_of(start, 0.7), ball, n_points=20000)
    after_mesh = voromesh_of(fitted, 0.7)
    after = mesh_metrics(after_mesh, ball, n_points=20000)
    assert after["chamfer_l1"] < 0.5 * before["chamfer_l1"]
    assert after["normal_consistency"] > before["normal_consistency"]
    report = check_surface(*after_mesh)
    assert report["watertight"] and report["winding_consistent"]
    assert report["volume"] == pytest.approx(4 / 3 * np.pi * 0.7**3, rel=0.03)
    assert np.abs(fitted).max() <= 1.0  # clamped to the cube


def test_fit_is_deterministic_and_zero_steps_keep_the_start():
    _, points = sphere_case()
    start = grid_generators(points, 8)
    with torch_threads(1):  # one thread: the same sums in the same order
        a, _ = fit_generators(start, points, steps=5, lr=0.01, seed=4)
        b, _ = fit_generators(start, points, steps=5, lr=0.01, seed=4)
    np.testing.assert_array_equal(a, b)
    same, losses = fit_generators(start, points, steps=0, lr=0.01)
    np.testing.assert_allclose(same, start, atol=1e-7)  # float32, as fitted
    assert losses == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": -1, "lr": 0.1}, "steps must be an integer >= 0, got -1"),
        ({"steps": 1, "lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
        ({"steps": 1, "lr": 0.1, "k": 1}, "k must be an integer >= 2, got 1"),
        (
            {"steps": 1, "lr": 0.1, "batch_fraction": 1.5},
            "batch_fraction must be a number in (0, 1], got 1.5",
        ),
    ],
)
def test_fit_refuses_bad_settings(kwargs, message):
    with pytest.raises(InputError) as info:
        fit_generators(np.zeros((2, 3)), np.zeros((3, 3)), **kwargs)
    assert str(info.value) == message
