"""Point-cloud normals: oriented outward along the closing, bilateral smoothing, the IMLS distance."""

import numpy as np
from scipy.spatial import cKDTree

from fields3d.geometry.closing import closing_sdf
from fields3d.geometry.normals import imls, oriented_normals, smooth_normals


def _holed_sphere(n=6000, radius=0.7, hole=0.35, seed=0):
    """Points on a sphere with a polar cap of angular radius ``hole`` (radians) missing."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n * 2, 3))
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    v = v[v[:, 2] < np.cos(hole)][:n]
    return v * radius


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
