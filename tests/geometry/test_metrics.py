"""Mesh metrics against values derived by hand: exact zeros, the sampling limit, known offsets, a shifted cube.

Sampling statistics used below. n points spread uniformly on a surface of area A (in units of the
ground truth's diagonal) form, locally, a plane Poisson process of density lam = n / A. The distance
r from any point of that surface to the nearest sample then has P(r > s) = exp(-pi lam s^2), so
E[r] = 1 / (2 sqrt(lam)) and E[r^2] = 1 / (pi lam). A point at distance d from the surface is at
sqrt(d^2 + r^2) from the nearest sample: on average d + E[r^2] / (2 d) when d >> E[r].
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from fields3d.errors import InputError
from fields3d.geometry.metrics import format_metrics, mesh_metrics, threshold_label

KEYS = {
    "chamfer_l1", "chamfer_l2", "accuracy", "completeness", "normal_consistency",
    "f_score@1%", "precision@1%", "recall@1%", "f_score@0.5%", "precision@0.5%", "recall@0.5%",
    "n_points", "gt_diagonal",
}  # fmt: skip


@pytest.fixture(scope="module")
def sphere():
    """Unit icosphere, 20,480 faces; its bounding box is exactly [-1, 1]^3 (diagonal 2 sqrt 3)."""
    return trimesh.creation.icosphere(subdivisions=5)


def _reordered(mesh: trimesh.Trimesh, scale: float = 1.0) -> trimesh.Trimesh:
    """The same surface (scaled about the origin) with its faces shuffled, so its samples differ."""
    order = np.random.default_rng(7).permutation(len(mesh.faces))
    return trimesh.Trimesh(mesh.vertices * scale, mesh.faces[order], process=False)


def test_identical_meshes_give_exact_zeros(sphere):
    m = mesh_metrics(sphere, sphere, n_points=20_000)
    assert set(m) == KEYS
    # same mesh, same seed: the two sample sets are identical
    assert m["chamfer_l1"] == m["chamfer_l2"] == m["accuracy"] == m["completeness"] == 0.0
    assert all(m[key] == 1.0 for key in KEYS if "@" in key)
    assert m["normal_consistency"] == pytest.approx(1.0, abs=1e-12)
    assert m["n_points"] == 20_000 and m["gt_diagonal"] == pytest.approx(
        2 * math.sqrt(3), rel=1e-12
    )
    assert all(type(value) is float for key, value in m.items() if key != "n_points")
    assert type(m["n_points"]) is int


def test_same_surface_other_samples_reaches_the_sampling_limit(sphere):
    n = 20_000
    m = mesh_metrics(_reordered(sphere), sphere, n_points=n)
    area = sphere.area / 12.0  # diagonal^2 = 12
    lam = n / area
    # sd of each mean over 20,000 samples is about 0.4 %; curvature and tessellation are far smaller
    assert m["chamfer_l1"] == pytest.approx(1 / (2 * math.sqrt(lam)), rel=0.02)  # 0.00362
    assert m["accuracy"] == pytest.approx(m["completeness"], rel=0.02)
    assert m["chamfer_l2"] == pytest.approx(1 / (math.pi * lam), rel=0.03)
    for t in (0.01, 0.005):
        within = 1 - math.exp(-math.pi * lam * t * t)  # 0.9975 and 0.777
        label = threshold_label(t)
        assert m[f"precision@{label}"] == pytest.approx(within, abs=0.01)
        assert m[f"recall@{label}"] == pytest.approx(within, abs=0.01)
        assert m[f"f_score@{label}"] == pytest.approx(within, abs=0.01)
    # nearest samples lie on the same or a neighbouring face, 2 degrees apart at most
    assert 0.999 < m["normal_consistency"] < 1.0


def test_sphere_scaled_by_ten_percent(sphere):
    n, e = 50_000, 0.1
    m = mesh_metrics(_reordered(sphere, 1 + e), sphere, n_points=n)
    offset = e / (2 * math.sqrt(3))  # the surfaces are e apart, in units of the diagonal: 0.0289
    lam = n / (sphere.area / 12.0)
    # tessellation: sample radii lie in [0.99976, 1] (the flat faces' sagitta), 2.4e-4 at most;
    # sampling adds E[r^2] / (2 offset) = 0.4 % to the L1 distance and E[r^2] to the squared one
    assert m["chamfer_l1"] == pytest.approx(
        offset * (1 + 1 / (2 * math.pi * lam * offset**2)), rel=1e-3
    )
    assert m["chamfer_l2"] == pytest.approx(offset**2 + 1 / (math.pi * lam), rel=2e-3)
    assert m["accuracy"] == pytest.approx(m["completeness"], rel=1e-3)
    # every sample is at least `offset` (> 1 %) away from the other surface
    assert all(m[key] == 0.0 for key in KEYS if "@" in key)
    assert m["normal_consistency"] > 0.999


def test_sphere_scaled_between_the_thresholds(sphere):
    n, e = 50_000, 0.025
    m = mesh_metrics(_reordered(sphere, 1 + e), sphere, n_points=n)
    offset = e / (2 * math.sqrt(3))  # 0.0072: above 0.5 %, below 1 %
    lam = n / (sphere.area / 12.0)
    within = 1 - math.exp(
        -math.pi * lam * (0.01**2 - offset**2)
    )  # sqrt(offset^2 + r^2) < 1 %: 0.9992
    assert m["f_score@1%"] == pytest.approx(within, abs=2e-3)
    assert m["f_score@0.5%"] == m["precision@0.5%"] == m["recall@0.5%"] == 0.0


def _cube_within(shift: float, threshold: float, n: int) -> float:
    """Expected fraction of a unit cube's samples closer than ``threshold`` (of the diagonal) to
    samples of the same cube moved by ``shift`` along x (world units).

    The moved cube's surface: four side faces, in the plane of the other cube's faces over 1 - shift
    of their length and up to ``shift`` beyond its edge; the +x face ``shift`` outside; the -x face
    inside, at min(shift, distance to the side faces). A point at distance d (of the diagonal) is
    within t of a sample with probability 1 - exp(-pi lam (t^2 - d^2)) for d < t.
    """
    diagonal = math.sqrt(3)
    lam = n / (6 / diagonal**2)

    def within(d):
        d = np.asarray(d, dtype=float) / diagonal
        return np.where(
            d < threshold, 1 - np.exp(-math.pi * lam * np.clip(threshold**2 - d**2, 0, None)), 0.0
        )

    x = np.linspace(-0.5 + shift, 0.5 + shift, 20001)
    sides = 4 * within(np.maximum(0.0, x - 0.5)).mean()
    g = np.linspace(-0.5, 0.5, 1001)
    y, z = np.meshgrid(g, g)
    inner = within(np.minimum(shift, np.minimum(0.5 - abs(y), 0.5 - abs(z)))).mean()
    return float((sides + within(shift) + inner) / 6)


def test_translated_cube():
    n, shift = 100_000, 0.015  # 0.0087 of the diagonal: between the two thresholds
    gt = trimesh.creation.box()
    moved = trimesh.Trimesh(gt.vertices + [shift, 0, 0], gt.faces[::-1], process=False)
    m = mesh_metrics(moved, gt, n_points=n)
    assert m["accuracy"] == pytest.approx(
        m["completeness"], rel=0.03
    )  # mirror images of each other
    for t, expected in ((0.01, 0.9936), (0.005, 0.6538)):
        assert _cube_within(shift, t, n) == pytest.approx(expected, abs=1e-4)
        label = threshold_label(t)
        # sd of a fraction of 100,000 samples <= 0.0016, plus up to 0.002 for how many land on each face
        for key in ("precision", "recall", "f_score"):
            assert m[f"{key}@{label}"] == pytest.approx(expected, abs=0.01), key
    # perpendicular neighbours: the inner face's border strip (area 0.059), half of the overhangs
    # (0.03) and a sample spacing along the 12 edges (about 0.036) of the 6: 1 - 0.021
    assert m["normal_consistency"] == pytest.approx(0.979, abs=0.005)


def test_swapping_pred_and_gt_swaps_the_directions():
    # same-sized boxes: gt's normalisation differs only by a translation, and samples are seeded
    a = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    b = trimesh.Trimesh(a.vertices + [0.02, -0.03, 0.01], a.faces[::-1], process=False)
    ab, ba = mesh_metrics(a, b, n_points=20_000), mesh_metrics(b, a, n_points=20_000)
    assert ab["accuracy"] == pytest.approx(ba["completeness"], rel=1e-9)
    assert ab["completeness"] == pytest.approx(ba["accuracy"], rel=1e-9)
    for key in ("chamfer_l1", "chamfer_l2", "normal_consistency", "f_score@1%", "f_score@0.5%"):
        assert ab[key] == pytest.approx(ba[key], rel=1e-9), key
    assert ab["precision@1%"] == ba["recall@1%"] and ab["recall@0.5%"] == ba["precision@0.5%"]


def test_invariant_to_moving_and_scaling_both(sphere):
    pred = _reordered(sphere, 1.02)
    m = mesh_metrics(pred, sphere, n_points=10_000)
    shift, scale = np.array([10.0, -4.0, 2.5]), 37.0
    moved = mesh_metrics(
        (pred.vertices * scale + shift, pred.faces),
        (sphere.vertices * scale + shift, sphere.faces),
        n_points=10_000,
    )
    for key, value in m.items():
        expected = value * scale if key == "gt_diagonal" else value
        assert moved[key] == pytest.approx(expected, rel=1e-9, abs=1e-15), key


def test_tuples_and_tensors_equal_trimesh(sphere):
    pred = _reordered(sphere, 1.01)
    expected = mesh_metrics(pred, sphere, n_points=5_000, seed=3)
    as_tensors = (torch.from_numpy(pred.vertices), torch.from_numpy(pred.faces))
    assert (
        mesh_metrics(as_tensors, (sphere.vertices, sphere.faces), n_points=5_000, seed=3)
        == expected
    )
    assert mesh_metrics(pred, sphere, n_points=5_000, seed=4) != expected


def test_other_thresholds():
    box = trimesh.creation.box()
    m = mesh_metrics(box, box, n_points=100, thresholds=[0.02, 0.001, 0.0125])
    assert [key for key in m if key.startswith("f_score")] == [
        "f_score@2%",
        "f_score@0.1%",
        "f_score@1.25%",
    ]


@pytest.mark.parametrize(
    "pred, gt, message",
    [
        (
            (np.zeros((3, 3)), np.zeros((0, 3), int)),
            None,
            "pred mesh holds no triangles, so there is no surface to compare; "
            "check that the reconstruction produced a surface",
        ),
        (
            None,
            trimesh.Trimesh(),
            "gt mesh holds no triangles, so there is no surface to compare; pass the ground-truth mesh",
        ),
        (
            (np.zeros((3, 3)), np.array([[0, 1, 2], [2, 1, 0]])),
            None,
            "pred mesh has zero surface area (all 2 triangles are degenerate)",
        ),
        ("mesh.ply", None, "pred must be a trimesh.Trimesh or a (verts, faces) tuple, got str"),
        (
            (np.array([[0, 0, 0], [1, 0, 0], [0, np.nan, 0]]), np.array([[0, 1, 2]])),
            None,
            "pred verts has NaN or infinite coordinates in 1 of its 3 rows (first at index 2); a mesh cannot hold them",
        ),
        (
            (np.eye(3), np.array([[0, 1, 3]])),
            None,
            "pred faces must index pred verts (0 to 2), got indices from 0 to 3",
        ),
    ],
)
def test_bad_meshes(pred, gt, message):
    box = trimesh.creation.box()
    with pytest.raises(InputError) as info:
        mesh_metrics(box if pred is None else pred, box if gt is None else gt, n_points=100)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_points": 0}, "n_points must be an integer >= 1, got 0"),
        ({"seed": -2}, "seed must be an integer from 0 to 9223372036854775807, got -2"),
        *[
            (
                {"thresholds": bad},
                "thresholds must be a non-empty sequence of numbers between 0 and 1 (fractions of the "
                f"ground truth's bounding-box diagonal), got {shown}",
            )
            for bad, shown in (
                ((), "()"),
                ((0.01, 1.0), "(0.01, 1.0)"),
                (0.01, "0.01"),
                ((True,), "(True,)"),
            )
        ],
    ],
)
def test_bad_arguments(kwargs, message):
    box = trimesh.creation.box()
    with pytest.raises(InputError) as info:
        mesh_metrics(box, box, **kwargs)
    assert str(info.value) == message


def test_format_metrics():
    m = {
        "chamfer_l1": 0.0041234,
        "chamfer_l2": 3.1e-05,
        "accuracy": 0.004,
        "completeness": 0.0042468,
        "normal_consistency": 0.98234,
        "f_score@1%": 0.93451,
        "precision@1%": 0.9,
        "recall@1%": 0.97,
        "f_score@0.5%": 0.8,
        "n_points": 100_000,
        "gt_diagonal": 2.0,
    }
    assert format_metrics(m) == (
        "Chamfer-L1 0.00412 | Chamfer-L2 3.100e-05 | NC 0.9823 | F@1% 0.9345 | F@0.5% 0.8000 | "
        "accuracy 0.00400 | completeness 0.00425 "
        "(100,000 samples a surface; distances in ground-truth bounding-box diagonals)"
    )
    assert format_metrics({"chamfer_l1": 0.5}) == "Chamfer-L1 0.50000"


def test_sample_counts_past_memory_and_faces_past_the_vertices():
    from fields3d.errors import InputError
    from fields3d.geometry.metrics import mesh_metrics
    from fields3d.geometry.pointcloud import _sample_surface

    box = trimesh.creation.box()
    with pytest.raises(InputError) as err:
        mesh_metrics(box, box, n_points=10**11)
    assert (
        str(err.value)
        == "n_points must be at most 100000000 samples a surface (memory), got 100000000000"
    )
    with pytest.raises(InputError) as err:
        _sample_surface(box.vertices, np.array([[0, 1, 99]]), 10, 0, name="scan.ply")
    assert str(err.value) == (
        "cannot sample scan.ply: its faces index vertices from 0 to 99, but it has 8; repair "
        "or re-export the file"
    )


def test_meshes_near_1e300():
    box = trimesh.creation.box()
    huge = (box.vertices * 1e300, box.faces)
    with np.errstate(all="raise"):  # no overflow on the way (it printed warnings before the error)
        same = mesh_metrics(huge, huge, n_points=1000)
        assert same["f_score@1%"] == 1.0 and same["gt_diagonal"] == pytest.approx(3**0.5 * 1e300)
        small_vs_huge = mesh_metrics(box, huge, n_points=1000)
        # the small box is a point at the centre: half a side, 0.5 / sqrt(3) diagonals, from every face
        assert small_vs_huge["f_score@1%"] == 0.0 and small_vs_huge["accuracy"] == pytest.approx(
            0.5 / 3**0.5, abs=0.01
        )
        with pytest.raises(InputError) as info:
            mesh_metrics(huge, box, n_points=1000)
    reach = np.abs(box.vertices * 1e300 / 3**0.5).max()
    assert str(info.value) == (
        f"pred mesh reaches {reach:.3g} ground-truth diagonals from the ground truth's "
        "centre, too far to measure: put both meshes in the same units"
    )
