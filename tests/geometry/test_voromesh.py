"""VoroMesh extraction against brute force: vertices equidistant from their nearest generators,
faces on inside/outside bisectors, the enclosed volume against nearest-generator labels on a grid;
closed, consistently wound meshes on the shipped meshes and on degenerate input; exact errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from fields3d.errors import InputError
from fields3d.geometry import load_mesh, sample_mesh
from fields3d.geometry.pointcloud import Normalization
from fields3d.geometry.sdf import MeshSDF
from fields3d.geometry.voromesh import VoronoiDiagram, check_surface, voromesh_surface
from fields3d.geometry.voromesh_fit import grid_generators

MESHES = sorted((Path(__file__).resolve().parents[2] / "assets" / "meshes").glob("*.obj"))


def random_case(n: int = 400, seed: int = 0):
    """Random generators in [-1, 1]^3, inside a ball of radius 0.5 (away from the hull)."""
    generators = np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 3))
    return generators, np.linalg.norm(generators, axis=1) < 0.5


def assert_closed(verts, faces) -> dict:
    report = check_surface(verts, faces)
    assert report["watertight"] and report["winding_consistent"], report
    assert report["volume"] > 0, report
    return report


def test_vertices_are_equidistant_from_their_nearest_generators():
    generators, inside = random_case()
    verts, _ = voromesh_surface(generators, inside)
    dist, ids = cKDTree(generators).query(verts, k=5)
    # a Voronoi vertex of points in general position: 4 nearest at one distance, the 5th farther
    assert np.abs(dist[:, 3] - dist[:, 0]).max() < 1e-7
    assert (dist[:, 4] - dist[:, 3]).min() > 1e-7
    # and on the surface: among those 4, an inside and an outside generator
    near = inside[ids[:, :4]]
    assert near.any(axis=1).all() and (~near).any(axis=1).all()


def test_faces_lie_on_bisectors_and_face_from_inside_to_outside():
    generators, inside = random_case(seed=1)
    verts, faces = voromesh_surface(generators, inside)
    tri = verts[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cross, axis=1)
    keep = area > 1e-6 * area.max()  # zero-area fan triangles have no normal
    centre, normal = tri[keep].mean(axis=1), cross[keep] / area[keep, None]
    dist, ids = cKDTree(generators).query(centre, k=3)
    assert np.abs(dist[:, 1] - dist[:, 0]).max() < 1e-7  # on the bisector of the nearest two
    assert (dist[:, 2] - dist[:, 1]).min() > 1e-9  # and not at an edge of the diagram
    a, b = inside[ids[:, 0]], inside[ids[:, 1]]
    assert (a != b).all()
    g_in = np.where(a[:, None], generators[ids[:, 0]], generators[ids[:, 1]])
    g_out = np.where(a[:, None], generators[ids[:, 1]], generators[ids[:, 0]])
    towards = (g_out - g_in) / np.linalg.norm(g_out - g_in, axis=1, keepdims=True)
    assert np.einsum("ij,ij->i", normal, towards).min() > 1 - 1e-6  # outward, perpendicular


def test_volume_equals_the_inside_cells_by_nearest_generator_labels():
    generators, inside = random_case(300, seed=2)
    verts, faces = voromesh_surface(generators, inside)
    volume = assert_closed(verts, faces)["volume"]
    axis = (np.arange(120) + 0.5) / 120 * 2.0 - 1.0  # cell centres of a 120^3 grid of [-1, 1]^3
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    labels = inside[cKDTree(generators).query(grid)[1]]
    brute = labels.mean() * 8.0
    assert volume == pytest.approx(brute, rel=0.01)
    assert verts.min() > -1 and verts.max() < 1  # the inside cells are closed by real neighbours


def test_centroids_are_the_mean_voronoi_vertex_of_each_cell():
    generators, _ = random_case(60, seed=3)
    diagram = VoronoiDiagram(generators)
    centroids = diagram.centroids()
    for i in (0, 7, 31):
        corners = diagram.vertices[(diagram.tetrahedra == i).any(axis=1)]
        np.testing.assert_allclose(centroids[i], corners.mean(axis=0), atol=1e-12)
        # each of them is a Voronoi vertex of generator i: no generator is nearer than i
        nearest = cKDTree(generators).query(corners, k=1)[0]
        own = np.linalg.norm(corners - generators[i], axis=1)
        bounded = np.abs(corners).max(axis=1) < 1  # the others are nearer bounding generators
        np.testing.assert_allclose(own[bounded], nearest[bounded], atol=1e-7)


def test_torch_input_and_one_diagram_for_many_occupancies():
    generators, inside = random_case(200, seed=4)
    diagram = VoronoiDiagram(torch.from_numpy(generators).float())
    v1, f1 = diagram.surface(torch.from_numpy(inside))
    assert_closed(v1, f1)
    v2, f2 = diagram.surface(~inside)  # the complement: the ball's faces turned, and the cube's
    assert assert_closed(v2, f2)["volume"] > check_surface(v1, f1)["volume"]


def test_a_regular_grid_is_closed_though_its_generators_are_cospherical():
    axis = np.linspace(-1.0, 1.0, 14)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    inside = np.linalg.norm(grid, axis=1) < 0.7
    verts, faces = voromesh_surface(grid, inside)
    volume = assert_closed(verts, faces)["volume"]
    assert volume == pytest.approx(inside.sum() * (2 / 13) ** 3, rel=1e-6)  # whole cubes


@pytest.mark.parametrize("count", [2, 3, 50])
def test_coplanar_generators_give_a_closed_mesh(count):
    rng = np.random.default_rng(count)
    generators = np.c_[rng.uniform(-1, 1, (count, 2)), np.zeros(count)]
    inside = np.arange(count) < max(1, count // 3)
    assert_closed(*voromesh_surface(generators, inside))


def test_an_inside_generator_on_the_hull_is_clipped_by_the_bounding_cube():
    generators = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    verts, faces = voromesh_surface(generators, np.array([True, False, False, False]))
    assert_closed(verts, faces)
    assert verts.min() < -0.5  # its cell reaches out towards the far bounding generators


@pytest.mark.parametrize("path", MESHES, ids=lambda p: p.stem)
def test_shipped_meshes_give_closed_voromeshes(path):
    mesh = load_mesh(path)
    norm = Normalization.fit(mesh.vertices)
    unit = norm.to_unit(mesh.vertices)
    samples = sample_mesh(type(mesh)(unit, mesh.faces, process=False), 20000, seed=0).points
    generators = grid_generators(samples, 24)
    diagram = VoronoiDiagram(generators)
    inside = MeshSDF(unit, mesh.faces)(diagram.centroids()) < 0
    assert_closed(*diagram.surface(inside))


@pytest.mark.parametrize(
    "generators, message",
    [
        (
            np.zeros((4, 2)),
            "generators must be a float array of shape (N, 3) with N >= 2, got float64 (4, 2)",
        ),
        (
            np.zeros((1, 3)),
            "generators must be a float array of shape (N, 3) with N >= 2, got float64 (1, 3)",
        ),
        (
            np.zeros((4, 3), dtype=np.int64),
            "generators must be a float array of shape (N, 3) with N >= 2, got int64 (4, 3)",
        ),
        (
            np.array([[0.0, 0, 0], [1, np.nan, 0], [0, 1, 0], [0, 0, np.inf]]),
            "generators has NaN or infinite coordinates in 2 of its 4 rows (first at index 1)",
        ),
        (
            np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]]),
            "generators must be distinct, but row 1 ([1.0, 0.0, 0.0]) appears 2 times; drop the "
            "repeats",
        ),
    ],
)
def test_bad_generators(generators, message):
    with pytest.raises(InputError) as info:
        VoronoiDiagram(generators)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "occupancy, message",
    [
        (
            np.zeros(5, bool),
            "occupancy marks none of the 5 generators inside, so there is no surface; mark at "
            "least one inside and one outside",
        ),
        (
            np.ones(5, bool),
            "occupancy marks none of the 5 generators outside, so there is no surface; mark at "
            "least one inside and one outside",
        ),
        (
            np.ones(4, bool),
            "occupancy must be a bool array of shape (5,), one per generator, got bool (4,)",
        ),
        (
            np.ones(5),
            "occupancy must be a bool array of shape (5,), one per generator, got float64 (5,)",
        ),
    ],
)
def test_bad_occupancy(occupancy, message):
    generators = np.random.default_rng(0).uniform(-1, 1, (5, 3))
    with pytest.raises(InputError) as info:
        voromesh_surface(generators, occupancy)
    assert str(info.value) == message
