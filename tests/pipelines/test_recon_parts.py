"""The pieces of the reconstruction: the hole-closing sign, oriented normals, IMLS, mesh clean-up."""

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from fields3d.errors import InputError
from fields3d.pipelines.recon import postprocess
from fields3d.pipelines.recon.initial import (
    _trilinear,
    closing_sdf,
    imls,
    oriented_normals,
    smooth_normals,
)


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
    verts, faces, info = postprocess.clean(
        mesh.vertices, mesh.faces, points, trim_distance=0.2, min_component=0.05
    )
    assert info["small_component_faces_removed"] == len(small.faces)
    assert info["far_faces_trimmed"] > 0
    assert verts[:, 2].max() < 0.5 + 0.2 + 0.2 and verts[:, 0].max() <= 1.0
    assert faces.max() == len(verts) - 1  # compacted
    _kept, kept_faces, info = postprocess.clean(mesh.vertices, mesh.faces, points, 0.0, 0.0)
    assert len(kept_faces) == len(mesh.faces) and "far_faces_trimmed" not in info


def test_bilateral_normal_smoothing_keeps_the_two_sides_of_a_thin_plate_apart():
    # two sheets 0.01 apart with opposite normals: every neighbourhood of 64 holds both sides, so a
    # plain mean would cancel the normals; the bilateral weights keep each side's own
    rng = np.random.default_rng(1)
    top = np.c_[rng.uniform(-1, 1, (3000, 2)), np.full(3000, 0.005)]
    bottom = np.c_[rng.uniform(-1, 1, (3000, 2)), np.full(3000, -0.005)]
    points = np.vstack([top, bottom])
    normals = np.repeat(
        [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], 3000, axis=0
    ) + 0.2 * rng.standard_normal((6000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    tree = cKDTree(points)
    smooth = smooth_normals(tree, normals, 64)
    assert smooth[:3000, 2].min() > 0.95 and smooth[3000:, 2].max() < -0.95
    plain = smooth_normals(tree, normals, 64, power=0.0, iterations=1)  # every neighbour weight 1
    assert np.abs(plain[:, 2]).min() < 0.5  # the plain mean is pulled round by the other side


def test_a_flipped_normal_turns_to_its_neighbours():
    rng = np.random.default_rng(3)
    points = np.c_[rng.uniform(-1, 1, (500, 2)), np.zeros(500)]
    normals = np.array([0.0, 0.0, 1.0]) + 0.05 * rng.standard_normal((500, 3))
    normals[7] = [0.1, 0.0, -1.0]
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    smooth = smooth_normals(cKDTree(points), normals, 16)
    assert smooth[7, 2] > 0.99


def test_taubin_smoothing_calms_a_noisy_sphere_without_shrinking_it():
    sphere = trimesh.creation.icosphere(subdivisions=4)
    rng = np.random.default_rng(2)
    noisy = sphere.vertices * (1.0 + 0.01 * rng.standard_normal((len(sphere.vertices), 1)))
    smooth = postprocess.taubin(noisy, sphere.faces, 3)
    radius_before, radius_after = np.linalg.norm(noisy, axis=1), np.linalg.norm(smooth, axis=1)
    assert radius_after.std() < 0.5 * radius_before.std()
    assert abs(radius_after.mean() - 1.0) < 0.003
    assert postprocess.taubin(noisy, sphere.faces, 0) is noisy


def test_smoothing_normals_calms_a_noisy_plane_and_keeps_their_side():
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(-1, 1, (4000, 2)), np.zeros(4000)]
    normals = np.array([0.0, 0.0, 1.0]) + 0.3 * rng.standard_normal((4000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    smooth = smooth_normals(cKDTree(points), normals, 32)
    np.testing.assert_allclose(np.linalg.norm(smooth, axis=1), 1.0, atol=1e-12)
    assert smooth[:, 2].min() > 0.9 > normals[:, 2].min()  # tighter around +z, same side
    assert np.median(np.arccos(np.clip(smooth[:, 2], -1, 1))) < 0.25 * np.median(
        np.arccos(normals[:, 2])
    )


def test_the_cores_neighbour_search_agrees_with_the_kd_tree():
    """GridPull's queries find their nearest input points with the core's grid on GPUs: on the CPU
    here, the same points and distances as scipy's cKDTree (float64; random points, no ties)."""
    import torch

    from fields3d.pipelines.recon.gridpull import GridPullConfig, _queries, neighbours

    rng = np.random.default_rng(3)
    points = rng.uniform(-0.8, 0.8, (3000, 3))
    tree = cKDTree(points)
    queries = rng.uniform(-1, 1, (5000, 3))
    for k in (1, 21, 40):  # 40 is over the core's limit: the KD-tree answers
        d_tree, i_tree = neighbours(tree, queries, k)
        d_core, i_core = neighbours(tree, queries, k, torch.device("cpu"))
        assert i_core.shape == (5000, k) and np.array_equal(i_core, i_tree)
        np.testing.assert_allclose(d_core, d_tree, rtol=1e-12, atol=1e-15)
    cfg = GridPullConfig()
    q_tree, t_tree = _queries(tree, cfg, np.random.default_rng(0))
    q_core, t_core = _queries(tree, cfg, np.random.default_rng(0), torch.device("cpu"))
    assert np.array_equal(q_core, q_tree) and np.array_equal(t_core, t_tree)


def test_gridpull_queries_on_cuda_match_the_cpu(twin):
    """On a GPU the nearest points come from the core's grid on the device: the same targets (here
    also with the core's CUDA launchers emulated on the CPU)."""
    import torch

    from fields3d.pipelines.recon.gridpull import GridPullConfig, _queries

    points = _holed_sphere(4000)
    tree = cKDTree(points)
    cfg = GridPullConfig()
    q_cpu, t_cpu = _queries(tree, cfg, np.random.default_rng(0))
    with twin.active():
        q_gpu, t_gpu = _queries(tree, cfg, np.random.default_rng(0), torch.device(twin.device))
    assert np.array_equal(q_gpu, q_cpu) and np.array_equal(t_gpu, t_cpu)
