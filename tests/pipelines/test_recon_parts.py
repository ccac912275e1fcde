"""The pieces of the reconstruction: mesh clean-up, the queries' nearest-neighbour search."""

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from fields3d.pipelines.recon import postprocess


def _holed_sphere(n=6000, radius=0.7, hole=0.35, seed=0):
    """Points on a sphere with a polar cap of angular radius ``hole`` (radians) missing."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n * 2, 3))
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    v = v[v[:, 2] < np.cos(hole)][:n]
    return v * radius


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


def test_taubin_smoothing_calms_a_noisy_sphere_without_shrinking_it():
    sphere = trimesh.creation.icosphere(subdivisions=4)
    rng = np.random.default_rng(2)
    noisy = sphere.vertices * (1.0 + 0.01 * rng.standard_normal((len(sphere.vertices), 1)))
    smooth = postprocess.taubin(noisy, sphere.faces, 3)
    radius_before, radius_after = np.linalg.norm(noisy, axis=1), np.linalg.norm(smooth, axis=1)
    assert radius_after.std() < 0.5 * radius_before.std()
    assert abs(radius_after.mean() - 1.0) < 0.003
    assert postprocess.taubin(noisy, sphere.faces, 0) is noisy


def test_the_cores_neighbour_search_agrees_with_the_kd_tree():
    """GridPull's queries find their nearest input points with the core's grid on GPUs: on the CPU
    here, the same points and distances as scipy's cKDTree (float64; random points, no ties)."""
    import torch

    from fields3d.pipelines.recon.queries import neighbours, sample_queries

    rng = np.random.default_rng(3)
    points = rng.uniform(-0.8, 0.8, (3000, 3))
    tree = cKDTree(points)
    queries = rng.uniform(-1, 1, (5000, 3))
    for k in (1, 21, 40):  # 40 is over the core's limit: the KD-tree answers
        d_tree, i_tree = neighbours(tree, queries, k)
        d_core, i_core = neighbours(tree, queries, k, torch.device("cpu"))
        assert i_core.shape == (5000, k) and np.array_equal(i_core, i_tree)
        np.testing.assert_allclose(d_core, d_tree, rtol=1e-12, atol=1e-15)
    q_tree, t_tree = sample_queries(tree, np.random.default_rng(0), 10, 20)
    q_core, t_core = sample_queries(tree, np.random.default_rng(0), 10, 20, torch.device("cpu"))
    assert np.array_equal(q_core, q_tree) and np.array_equal(t_core, t_tree)


def test_gridpull_queries_on_cuda_match_the_cpu(twin):
    """On a GPU the nearest points come from the core's grid on the device: the same targets (here
    also with the core's CUDA launchers emulated on the CPU)."""
    import torch

    from fields3d.pipelines.recon.queries import sample_queries

    points = _holed_sphere(4000)
    tree = cKDTree(points)
    q_cpu, t_cpu = sample_queries(tree, np.random.default_rng(0), 10, 20)
    with twin.active():
        q_gpu, t_gpu = sample_queries(
            tree, np.random.default_rng(0), 10, 20, torch.device(twin.device)
        )
    assert np.array_equal(q_gpu, q_cpu) and np.array_equal(t_gpu, t_cpu)
