"""The pieces of the reconstruction: the hole-closing sign, oriented normals, IMLS, mesh clean-up."""

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from fields3d.errors import InputError
from fields3d.pipelines.recon import postprocess
from fields3d.pipelines.recon.initial import _trilinear, closing_sdf, imls, oriented_normals, smooth_normals


def _holed_sphere(n=6000, radius=0.7, hole=0.35, seed=0):
    """Points on a sphere with a polar cap of angular radius ``hole`` (radians) missing."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n * 2, 3))
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    v = v[v[:, 2] < np.cos(hole)][:n]
    return v * radius


def test_closing_finds_the_inside_of_a_scan_with_a_hole():
    points = _holed_sphere()
    sdf = closing_sdf(cKDTree(points), resolution=48)
    probes = np.array([[0, 0, 0], [0.3, 0, 0], [0, 0, 0.4], [0.95, 0.95, 0.95], [0, 0, 0.95]])
    values = _trilinear(sdf.values, probes)
    assert (values[:3] < 0).all(), values  # inside, even on the axis through the hole
    assert (values[3:] > 0).all(), values
    # the radius had to grow past the base to close the hole
    assert sdf.radius > 2 * 2.0 / 47


def test_closing_rejects_a_cloud_that_fills_the_cube():
    axis = np.linspace(-1, 1, 30)
    filled = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    with pytest.raises(InputError) as err:
        closing_sdf(cKDTree(filled), resolution=24)
    assert str(err.value) == (
        "the point cloud leaves no free space around it in the unit cube, so inside and outside cannot be "
        "told apart; check that the file holds a surface scan, not a filled volume"
    )


def test_normals_point_outward_and_imls_is_the_signed_distance():
    points = _holed_sphere(hole=0.2)
    tree = cKDTree(points)
    normals = oriented_normals(tree, closing_sdf(tree, 48))
    radial = points / np.linalg.norm(points, axis=1, keepdims=True)
    assert np.einsum("ni,ni->n", normals, radial).min() > 0.95
    rng = np.random.default_rng(1)
    d = rng.standard_normal((500, 3))
    d = d[d[:, 2] < 0]  # away from the hole
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    for offset in (-0.05, 0.0, 0.04):
        x = d * (0.7 + offset)
        np.testing.assert_allclose(imls(tree, normals, x, sigma=0.03), offset, atol=0.004)


def test_clean_drops_small_components_and_far_faces():
    big = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    small = trimesh.creation.icosphere(subdivisions=0, radius=0.05)
    small.apply_translation([3, 0, 0])
    mesh = trimesh.util.concatenate([big, small])
    points = big.vertices[big.vertices[:, 2] < 0.5]  # the cap z > 0.5 has no points near it
    verts, faces, info = postprocess.clean(mesh.vertices, mesh.faces, points, trim_distance=0.2, min_component=0.05)
    assert info["small_component_faces_removed"] == len(small.faces)
    assert info["far_faces_trimmed"] > 0
    assert verts[:, 2].max() < 0.5 + 0.2 + 0.2 and verts[:, 0].max() <= 1.0
    assert faces.max() == len(verts) - 1  # compacted
    kept, kept_faces, info = postprocess.clean(mesh.vertices, mesh.faces, points, 0.0, 0.0)
    assert len(kept_faces) == len(mesh.faces) and "far_faces_trimmed" not in info


def test_smoothing_normals_calms_a_noisy_plane_and_keeps_their_side():
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(-1, 1, (4000, 2)), np.zeros(4000)]
    normals = np.array([0.0, 0.0, 1.0]) + 0.3 * rng.standard_normal((4000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    smooth = smooth_normals(cKDTree(points), normals, 32)
    np.testing.assert_allclose(np.linalg.norm(smooth, axis=1), 1.0, atol=1e-12)
    assert smooth[:, 2].min() > 0.9 > normals[:, 2].min()  # tighter around +z, same side
    assert np.median(np.arccos(np.clip(smooth[:, 2], -1, 1))) < 0.25 * np.median(np.arccos(normals[:, 2]))
