"""The distance from the points of a regular grid to a point cloud, exact only where it is small.

A signed distance built from a scan needs the true distance only near the scan: the closing
(:mod:`fields3d.geometry.closing`) compares it with a radius and keeps it as the field's value
next to the surface, while far away only its size matters. The exact nearest-point query is also
what costs: a k-d tree answers a grid point far from the cloud slowly, since a wide ball around it
holds many candidate leaves (on the 96^3 grid of a 50k-point scan, 15-16 s of a 20 s closing).

:class:`CappedDistance` queries the tree only for grid points that may lie within a cap, with the
search bounded by it, and gives every other grid point a lower bound from a Euclidean distance
transform of the grid points that hold a point. The cap can be raised later (the closing raises it
with its radius); each raise queries only the grid points it newly covers.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


def grid_points(resolution: int) -> np.ndarray:
    """``(R^3, 3)`` float32 coordinates of the grid points, in ``values.reshape(-1)`` order."""
    axis = np.linspace(-1.0, 1.0, resolution, dtype=np.float32)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


class CappedDistance:
    """Distances from the ``resolution``^3 grid points over ``[-1, 1]^3`` to the points of ``tree``.

    ``values`` is the exact distance to the nearest point wherever that is below ``cap``, and
    elsewhere ``max(cap, d_occ - h)``, a lower bound of it: ``d_occ`` is the distance to the
    nearest grid point that is some point's nearest grid point, which is off by at most
    ``h = sqrt(3) / 2`` spacings (no point lies farther than that from its nearest grid point).
    So ``values > r`` holds exactly where the true distance exceeds ``r`` for any ``r < cap``.

    Args:
        tree: a ``scipy.spatial.cKDTree`` of ``(N, 3)`` points inside ``[-1, 1]^3``.
        resolution: grid points per axis spanning ``[-1, 1]^3`` (corners included), >= 2.
        cap: the first cap, in unit-cube units (0: the lower bound everywhere, no query yet).

    Attributes:
        values: ``(R, R, R)`` float64, ``values[i, j, k]`` at ``-1 + (i, j, k) * spacing``.
        cap: the current cap.

    Example:
        >>> import numpy as np
        >>> from scipy.spatial import cKDTree
        >>> from fields3d.geometry.grid_distance import CappedDistance, grid_points
        >>> points = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])  # (N, 3)
        >>> dist = CappedDistance(cKDTree(points), resolution=9, cap=0.3)  # spacing 0.25
        >>> exact = cKDTree(points).query(grid_points(9))[0].reshape(9, 9, 9)
        >>> near = exact < 0.3
        >>> bool(np.allclose(dist.values[near], exact[near]))  # exact below the cap
        True
        >>> bool((dist.values[~near] >= 0.3).all() and (dist.values <= exact + 1e-12).all())
        True
        >>> dist.raise_cap(10.0)  # far enough for every grid point: the exact distance
        >>> bool(np.allclose(dist.values, exact))
        True
    """

    def __init__(self, tree: cKDTree, resolution: int, cap: float = 0.0) -> None:
        self.tree = tree
        self.resolution = resolution
        spacing = 2.0 / (resolution - 1)
        self._lower = np.maximum(_occupied_distance(tree.data, resolution) - _slack(spacing), 0.0)
        self.values = self._lower.copy()
        self.cap = 0.0
        self.raise_cap(cap)

    def raise_cap(self, cap: float) -> None:
        """Make ``values`` exact wherever the distance is below ``cap`` (no-op if it already is):
        query the grid points whose lower bound is below ``cap`` and whose value is not yet exact.
        """
        if cap <= self.cap:
            return
        flat, lower = self.values.reshape(-1), self._lower.reshape(-1)
        todo = np.flatnonzero((lower < cap) & (flat >= self.cap))
        if len(todo):
            dist, _ = self.tree.query(
                _coords(todo, self.resolution), k=1, distance_upper_bound=cap, workers=-1
            )
            flat[todo] = np.where(np.isfinite(dist), dist, np.maximum(cap, lower[todo]))
        self.cap = cap  # the grid points left out keep their lower bound, which is >= cap


def _slack(spacing: float) -> float:
    """Half a grid cell's diagonal, and a little more for the float32 grid coordinates."""
    return 0.5 * np.sqrt(3.0) * spacing + 1e-6


def _occupied_distance(points: np.ndarray, resolution: int) -> np.ndarray:
    """``(R, R, R)`` distance from each grid point to the nearest grid point nearest to a point."""
    spacing = 2.0 / (resolution - 1)
    cell = np.clip(np.rint((points + 1.0) / spacing).astype(np.int64), 0, resolution - 1)
    empty = np.ones((resolution,) * 3, dtype=bool)
    empty[cell[:, 0], cell[:, 1], cell[:, 2]] = False
    return ndimage.distance_transform_edt(empty) * spacing


def _coords(flat: np.ndarray, resolution: int) -> np.ndarray:
    """``(M, 3)`` float32 coordinates of the grid points at ``flat`` indices, as
    :func:`grid_points` gives them."""
    axis = np.linspace(-1.0, 1.0, resolution, dtype=np.float32)
    ijk = np.unravel_index(flat, (resolution,) * 3)
    return np.stack([axis[i] for i in ijk], axis=1)
