"""What ``reconstruct`` does to a cloud before fitting it: drop isolated points (always), drop
statistical outliers (on request), and read the scan's view directions where its PLY has them.

Isolated points (:func:`fields3d.geometry.outliers.isolated_points`) are dropped by default: on
clean, sparse and noisy samples and on scans without outliers the test finds none, while 2%
outliers scattered in the box made the closing fail (``benchmarks/RESULTS.md``, "Reconstruction
from virtual scans").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...geometry import outliers, views
from ...geometry.pointcloud import PointCloud, validate_point_cloud


@dataclass
class Screened:
    """A cloud ready to fit: ``cloud`` (its points ``(N, 3)`` float64), ``view_dirs`` ``(N, 3)``
    unit vectors or None, and how many points each step dropped (``isolated``, ``outliers``)."""

    cloud: PointCloud
    view_dirs: np.ndarray | None
    isolated: int
    outliers: int


def screen(cloud: PointCloud, path, remove_outliers: bool) -> Screened:
    """Read ``path``'s view directions (checked against ``cloud``, read from ``path``), then drop
    ``cloud``'s isolated points and, with ``remove_outliers``, its statistical outliers (the
    view directions follow the points). InputError for bad view directions."""
    dirs = views.read_view_dirs(path)
    if dirs is not None:
        dirs = views.check_view_dirs(dirs, len(cloud), cloud.source)
    isolated = outliers.isolated_points(cloud.points)
    cloud, dirs = _keep(cloud, dirs, ~isolated)
    dropped = 0
    if remove_outliers and len(cloud) >= 2:
        stray = outliers.statistical_outliers(cloud.points)
        cloud, dirs = _keep(cloud, dirs, ~stray)
        dropped = int(stray.sum())
    return Screened(cloud, dirs, int(isolated.sum()), dropped)


def _keep(cloud: PointCloud, dirs, keep: np.ndarray):
    if keep.all():
        return cloud, dirs
    normals = None if cloud.normals is None else cloud.normals[keep]
    cloud = validate_point_cloud(PointCloud(cloud.points[keep], normals, cloud.source))
    return cloud, None if dirs is None else dirs[keep]
