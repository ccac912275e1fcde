"""Outliers of a point cloud: statistical outlier removal (:func:`remove_outliers`, on request) and
isolated points (:func:`isolated_points`, which ``fields3d recon`` always drops).

Scanners add stray points (reflections, mixed pixels at silhouettes). Scattered over the box they
break the reconstruction's first step: the closing's radius follows the cloud's widest gaps, which
the strays then set, and they fill the free space the closing needs. A stray is far from its
neighbours on the scale of the cloud's own sampling: on the benchmark's clouds (uniform, sparse,
noisy, multi-view scans, three shapes) no point's mean distance to its 8 nearest neighbours is over
3.1 times the median of that distance outside occlusion edges (4.8-6.8 there), while 2% outliers
scattered in the box sit 6-26 times the median away (about 85% of them over 6 times).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from .._checks import check_int
from ..errors import InputError
from .mesh_io import rescaled
from .pointcloud import PointCloud, _finite_points, _is_real, _numbers_n3

#: :func:`isolated_points`' defaults: neighbours, and the multiple of the median distance.
ISOLATED_K, ISOLATED_FACTOR = 8, 6.0


def isolated_points(
    points: np.ndarray, *, k: int = ISOLATED_K, factor: float = ISOLATED_FACTOR
) -> np.ndarray:
    """Which points are isolated: their mean distance to their ``k`` nearest other points is more
    than ``factor`` times the median of that distance over the cloud.

    Args:
        points: ``(N, 3)`` finite numbers.
        k: neighbours per point, >= 1 (capped at N - 1).
        factor: the multiple of the median, > 1.

    Returns:
        ``(N,)`` bool, True for an isolated point (none when N <= k or when most points repeat).

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry.outliers import isolated_points
        >>> points = np.random.default_rng(0).normal(size=(1000, 3))
        >>> points /= np.linalg.norm(points, axis=1, keepdims=True)  # (1000, 3) on the unit sphere
        >>> strays = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])  # the centre and one far off
        >>> np.flatnonzero(isolated_points(np.vstack([points, strays]))).tolist()
        [1000, 1001]
    """
    check_int("k", k, 1)
    if not _is_real(factor) or not (math.isfinite(factor) and factor > 1):
        raise InputError(f"factor must be a number > 1, got {factor!r}")
    points = np.asarray(points, dtype=np.float64)
    if len(points) <= k:
        return np.zeros(len(points), dtype=bool)
    distance, _ = cKDTree(points).query(points, k=k + 1, workers=-1)
    mean = distance[:, 1:].mean(axis=1)
    median = float(np.median(mean))
    if median <= 0:
        return np.zeros(len(points), dtype=bool)
    return mean > factor * median


def remove_outliers(
    cloud: PointCloud, *, k: int = 20, std_ratio: float = 2.0
) -> tuple[PointCloud, int]:
    """Statistical outlier removal.

    A point is dropped when its mean distance to its ``k`` nearest other points exceeds the mean of
    that quantity over the cloud by more than ``std_ratio`` standard deviations (``k`` is capped at
    N - 1): with ``d_i`` that mean, point ``i`` is kept when
    ``d_i <= mean(d) + std_ratio * std(d)``.

    Args:
        cloud: a :class:`PointCloud`, ``points`` ``(N, 3)`` finite numbers (normals optional).
        k: neighbours per point, >= 1.
        std_ratio: the threshold in standard deviations, > 0.

    Returns:
        ``(kept, removed)``: a :class:`PointCloud` of the kept points ``(N - removed, 3)`` float64
        (and their normals), in their order, and the number removed (int).

    Raises InputError for a ``cloud`` that is not a :class:`PointCloud`, or whose points are not
    finite numbers of shape (N, 3).

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry import PointCloud, remove_outliers
        >>> points = np.random.default_rng(0).normal(size=(1000, 3))
        >>> points /= np.linalg.norm(points, axis=1, keepdims=True)  # (1000, 3) on the unit sphere
        >>> strays = np.array([[4.0, 0.0, 0.0], [0.0, -5.0, 0.0]])  # two far-off points
        >>> cloud = PointCloud(np.vstack([points, strays]), None, "scan")
        >>> kept, removed = remove_outliers(cloud, k=10)
        >>> kept.points.shape, removed
        ((1000, 3), 2)
    """
    check_int("k", k, 1)
    if not _is_real(std_ratio) or not (math.isfinite(std_ratio) and std_ratio > 0):
        raise InputError(f"std_ratio must be a number > 0, got {std_ratio!r}")
    if not isinstance(cloud, PointCloud):
        raise InputError(
            f"cloud must be a PointCloud (load_point_cloud returns one; or PointCloud(points, normals, "
            f"source)), got {type(cloud).__name__}"
        )
    points = _finite_points(_numbers_n3(cloud.points, cloud.source), cloud.source)
    if len(points) < 2:
        return cloud, 0
    keep = ~statistical_outliers(points, k=k, std_ratio=std_ratio)
    normals = None if cloud.normals is None else np.asarray(cloud.normals)[keep]
    return PointCloud(points[keep], normals, cloud.source), int(len(points) - keep.sum())


def statistical_outliers(points: np.ndarray, *, k: int = 20, std_ratio: float = 2.0) -> np.ndarray:
    """Which of ``points`` :func:`remove_outliers` drops (the same test and arguments).

    Args:
        points: ``(N, 3)`` finite float64, N >= 2. k: neighbours per point, >= 1 (capped at
            N - 1). std_ratio: the threshold in standard deviations, > 0.

    Returns:
        ``(N,)`` bool, True for an outlier.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry.outliers import statistical_outliers
        >>> points = np.vstack([np.random.default_rng(0).random((500, 3)), [[9.0, 9.0, 9.0]]])
        >>> np.flatnonzero(statistical_outliers(points, k=10)).tolist()
        [500]
    """
    k = min(k, len(points) - 1)
    distance, _ = cKDTree(points).query(points, k=k + 1, workers=-1)
    mean = distance[:, 1:].mean(axis=1)  # column 0 is the point itself (or a duplicate of it), at 0
    return ~_within(mean, std_ratio)


def _within(mean: np.ndarray, std_ratio: float) -> np.ndarray:
    """``mean <= mean.mean() + std_ratio * mean.std()``, where a point ~1e300 away neither makes the
    statistics overflow nor, at an infinite distance, takes every other point with it."""
    keep = np.isfinite(mean)
    if not keep.any():
        return keep
    scaled = rescaled(mean[keep])  # exact: a power of two near the largest
    keep[keep] = scaled <= scaled.mean() + std_ratio * scaled.std()
    return keep
