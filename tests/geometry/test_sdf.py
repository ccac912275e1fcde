"""MeshSDF against closed forms (a box), a brute-force search over all faces and winding numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from fields3d.errors import InputError
from fields3d.geometry import load_mesh
from fields3d.geometry.sdf import (
    EDGE_AB,
    EDGE_BC,
    EDGE_CA,
    FACE,
    VERT_A,
    VERT_B,
    VERT_C,
    MeshSDF,
    closest_point_on_triangles,
)

SPOT = Path(__file__).resolve().parents[2] / "assets" / "meshes" / "spot.obj"


def brute_force_distance(verts: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Unsigned distance to the nearest of all faces, one point at a time."""
    tri = verts[faces]
    out = []
    for p in points:
        pk = np.broadcast_to(p, (len(faces), 3))
        q, _ = closest_point_on_triangles(pk, tri[:, 0], tri[:, 1], tri[:, 2])
        out.append(np.sqrt(((pk - q) ** 2).sum(axis=1)).min())
    return np.array(out)


def winding_number(verts: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalised winding number (van Oosterom & Strackee solid angles), ~1 inside, ~0 outside."""
    a, b, c = (verts[faces[:, i]][None] - points[:, None] for i in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=2) for x in (a, b, c))
    det = np.einsum("mfi,mfi->mf", a, np.cross(b, c))
    dot = lambda x, y: np.einsum("mfi,mfi->mf", x, y)  # noqa: E731
    denominator = la * lb * lc + dot(a, b) * lc + dot(b, c) * la + dot(c, a) * lb
    return np.arctan2(det, denominator).sum(axis=1) / (2 * np.pi)


def test_box_matches_the_closed_form():
    box = trimesh.creation.box(
        (1.0, 2.0, 3.0)
    )  # 12 large triangles: every candidate search is tested
    points = np.random.default_rng(0).uniform(-2.5, 2.5, (4000, 3))
    d = np.abs(points) - np.array([0.5, 1.0, 1.5])
    exact = np.linalg.norm(np.maximum(d, 0), axis=1) + np.minimum(d.max(axis=1), 0)
    np.testing.assert_allclose(MeshSDF(box.vertices, box.faces)(points), exact, rtol=0, atol=1e-12)


def test_icosphere_matches_brute_force_with_the_sign_of_the_sphere():
    sphere = trimesh.creation.icosphere(subdivisions=2)
    points = np.random.default_rng(1).uniform(-1.5, 1.5, (1000, 3))
    sdf = MeshSDF(sphere.vertices, sphere.faces)(points)
    np.testing.assert_allclose(
        np.abs(sdf), brute_force_distance(sphere.vertices, sphere.faces, points), atol=1e-12
    )
    radius = np.linalg.norm(points, axis=1)
    clear = np.abs(radius - 0.97) > 0.04  # the polyhedron lies between radius ~0.94 and 1
    assert np.array_equal(sdf[clear] < 0, radius[clear] < 0.97)


def test_spot_sign_agrees_with_winding_numbers_and_distance_with_brute_force():
    mesh = load_mesh(SPOT)
    rng = np.random.default_rng(2)
    lo, hi = mesh.bounds
    near = mesh.vertices[rng.integers(0, len(mesh.vertices), 150)] + rng.normal(
        scale=0.01, size=(150, 3)
    )
    points = np.concatenate((near, rng.uniform(lo, hi, (150, 3))))
    sdf = MeshSDF(mesh.vertices, mesh.faces)(points)
    inside = winding_number(mesh.vertices, mesh.faces, points) > 0.5
    assert np.array_equal(sdf < 0, inside) and 20 < inside.sum() < 280
    np.testing.assert_allclose(
        np.abs(sdf), brute_force_distance(mesh.vertices, mesh.faces, points), atol=1e-12
    )


def test_points_on_the_surface_and_torch_input():
    box = trimesh.creation.box((2.0, 2.0, 2.0))
    sdf = MeshSDF(torch.from_numpy(box.vertices), torch.from_numpy(box.faces))
    on = np.array([[1.0, 0.2, 0.3], [1.0, 1.0, 1.0], [0.0, -1.0, 0.5]])
    np.testing.assert_allclose(sdf(on), 0.0, atol=1e-15)
    assert sdf(np.zeros((0, 3))).shape == (0,)
    assert sdf(np.array([[0, 0, 0]])).tolist() == [-1.0]  # integer points are accepted


@pytest.mark.parametrize(
    "p, region, q",
    [
        ((0.2, 0.2, 1.0), FACE, (0.2, 0.2, 0.0)),
        ((-1.0, -1.0, 0.0), VERT_A, (0.0, 0.0, 0.0)),
        ((2.0, -0.5, 0.0), VERT_B, (1.0, 0.0, 0.0)),
        ((-0.5, 2.0, 0.0), VERT_C, (0.0, 1.0, 0.0)),
        ((0.5, -1.0, 0.0), EDGE_AB, (0.5, 0.0, 0.0)),
        ((1.0, 1.0, 0.0), EDGE_BC, (0.5, 0.5, 0.0)),
        ((-1.0, 0.5, 0.0), EDGE_CA, (0.0, 0.5, 0.0)),
    ],
)
def test_closest_point_regions(p, region, q):
    a, b, c = (np.array([v], dtype=np.float64) for v in ((0, 0, 0), (1, 0, 0), (0, 1, 0)))
    got, code = closest_point_on_triangles(np.array([p], dtype=np.float64), a, b, c)
    np.testing.assert_allclose(got[0], q, atol=1e-15)
    assert code[0] == region


def test_degenerate_triangles_give_finite_points():
    a = np.array([[0.0, 0, 0], [0.0, 0, 0]])
    b = np.array([[1.0, 0, 0], [0.0, 0, 0]])
    c = np.array([[2.0, 0, 0], [0.0, 0, 0]])
    q, _ = closest_point_on_triangles(np.array([[0.5, 1.0, 0.0], [1.0, 1.0, 1.0]]), a, b, c)
    assert np.isfinite(q).all()


def test_errors():
    flat = np.zeros((3, 3))
    with pytest.raises(InputError) as info:
        MeshSDF(flat, np.array([[0, 1, 2]]))
    assert (
        str(info.value) == "a signed distance needs a mesh with surface area; its 1 faces have none"
    )
    box = trimesh.creation.box()
    with pytest.raises(InputError) as info:
        MeshSDF(box.vertices, box.faces)(np.zeros((4, 2)))
    assert str(info.value) == "points must be numbers of shape (M, 3), got float64 (4, 2)"
    with pytest.raises(InputError, match=r"^k must be an integer >= 1, got 0$"):
        MeshSDF(box.vertices, box.faces, k=0)
