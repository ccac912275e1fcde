"""The closing's signed distance: the inside of a scan with a hole, a cloud that fills the cube."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fields3d.errors import InputError
from fields3d.geometry.closing import _trilinear, closing_sdf


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
        "told apart; check that the file holds a surface scan, not a filled volume, and drop scattered "
        "outliers first (fields3d recon --remove-outliers)"
    )
