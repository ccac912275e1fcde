"""Isolated points: what recon always drops, found on scans with scattered outliers only."""

import numpy as np
import pytest
import trimesh

from fields3d.errors import InputError
from fields3d.geometry.outliers import isolated_points, statistical_outliers
from fields3d.geometry.pointcloud import sample_mesh


def test_scattered_outliers_are_isolated_and_surface_points_are_not():
    rng = np.random.default_rng(0)
    surface = sample_mesh(trimesh.creation.icosphere(4), 20_000, seed=0, noise=0.005).points
    strays = rng.uniform(-1.2, 1.2, size=(400, 3))  # 2% in the box
    found = isolated_points(np.vstack([surface, strays]))
    assert not found[:20_000].any()  # no surface point, noise and all
    assert found[20_000:].mean() > 0.6  # 0.67: most strays (not those near the surface)


def test_sparse_or_repeated_clouds_have_no_isolated_points():
    sparse = sample_mesh(trimesh.creation.box(), 500, seed=1).points
    assert not isolated_points(sparse).any()
    assert not isolated_points(np.repeat(sparse[:50], 9, axis=0)).any()  # median distance 0
    assert not isolated_points(sparse[:5]).any()  # fewer points than neighbours


def test_statistical_outliers_is_remove_outliers_test():
    points = np.vstack([np.random.default_rng(0).random((300, 3)), [[5.0, 5.0, 5.0]]])
    assert np.flatnonzero(statistical_outliers(points, k=8)).tolist() == [300]


@pytest.mark.parametrize(
    "kwargs, message",
    [({"k": 0}, "k must be"), ({"factor": 1.0}, "factor must be a number > 1, got 1.0")],
)
def test_isolated_points_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        isolated_points(np.zeros((20, 3)), **kwargs)
