"""A first signed distance for a point cloud without normals: the morphological closing.

The sign of a distance field is what a point cloud does not tell. We take it from the space the
points enclose: on a coarse grid of samples over ``[-1, 1]^3`` every grid point farther than
``radius`` from all input points is free space, and the free space connected to the grid's border
is the outside. Inflating the outside back by ``radius`` (a Euclidean distance transform) gives

    sdf0(x) = radius - dist(x, outside)     (inside the inflated outside: the distance to the points)

which is the signed distance to the *closing* of the shape by a ball of that radius: exact on
convex parts, closed across holes and gaps narrower than ``2 radius`` (scan holes, sparse
sampling), and filled in concavities narrower than that. Outside, the distance to the points is
exact up to ``EXACT_MARGIN`` grid spacings past the radius and a lower bound farther out, where
only its size matters (:mod:`fields3d.geometry.grid_distance`: the exact far distances cost most
of the time). The reconstruction's GridPull and neural
SDF start from it and pull the surface onto the points (see ``fields3d/pipelines/recon``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import InputError
from .grid_distance import CappedDistance, grid_points

__all__ = ["GridSDF", "closing_radius", "closing_sdf", "grid_gradient", "grid_points"]


@dataclass
class GridSDF:
    """Values of a field on the grid of ``resolution`` points per axis spanning ``[-1, 1]^3``."""

    values: np.ndarray  # (R, R, R) float32, values[i, j, k] at -1 + (i, j, k) * spacing
    radius: float  # closing radius used, in unit-cube units

    @property
    def resolution(self) -> int:
        return self.values.shape[0]

    @property
    def spacing(self) -> float:
        return 2.0 / (self.resolution - 1)


def closing_radius(tree: cKDTree, resolution: int, k: int = 8, quantile: float = 0.99) -> float:
    """A ball radius that no sampling gap slips through: at least 2 grid spacings, and at least
    the ``quantile`` of each point's distance to its ``k``-th neighbour (the typical gap width)."""
    spacing = 2.0 / (resolution - 1)
    dist, _ = tree.query(tree.data, k=k + 1, workers=-1)
    return float(max(2.0 * spacing, np.quantile(dist[:, -1], quantile)))


RADIUS_LADDER = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
EXACT_MARGIN = 3.0  # grid spacings past the radius within which the outside's distance is exact


def closing_sdf(
    tree: cKDTree, resolution: int = 96, radius: float | None = None, min_interior: float = 0.01
) -> GridSDF:
    """The closing's signed distance (negative inside) on a ``resolution``^3 grid.

    ``sdf0(x) = radius - dist(x, outside)`` inside the inflated outside, the distance to the
    points elsewhere (module docstring): exact where it is below ``radius + EXACT_MARGIN *
    spacing``, a lower bound at least that large farther out. With ``radius=None`` the radius grows along
    ``RADIUS_LADDER`` times :func:`closing_radius` until the inside holds free space (grid points
    farther than the radius from every point) amounting to ``min_interior`` of the grid points in
    the cloud's bounding box: a scan with holes (the Stanford bunny's base) leaks the outside into
    the object at small radii.

    Args:
        tree: a ``scipy.spatial.cKDTree`` of the ``(N, 3)`` points, normalised into ``[-1, 1]^3``.
        resolution: grid points per axis spanning ``[-1, 1]^3`` (corners included), >= 2.
        radius: the closing ball's radius in unit-cube units, or None to choose it as above.
        min_interior: the fraction of the bounding box's grid points the inside must hold.

    Returns:
        :class:`GridSDF`: ``values`` ``(R, R, R)`` float32 with ``values[i, j, k]`` at
        ``-1 + (i, j, k) * spacing`` (``spacing = 2 / (R - 1)``), and the ``radius`` used.

    Raises InputError when the points leave no outside at all (they fill the cube).

    Example:
        >>> import numpy as np
        >>> from scipy.spatial import cKDTree
        >>> points = np.random.default_rng(0).normal(size=(2000, 3))
        >>> points *= 0.5 / np.linalg.norm(points, axis=1, keepdims=True)  # (N, 3): radius 0.5
        >>> from fields3d.geometry.closing import closing_sdf
        >>> sdf = closing_sdf(cKDTree(points), resolution=33)
        >>> sdf.values.shape, sdf.values.dtype, sdf.spacing, sdf.radius  # radius: 2 spacings
        ((33, 33, 33), dtype('float32'), 0.0625, 0.125)
        >>> [round(float(sdf.values[i, 16, 16]), 2) for i in (16, 4)]  # centre; 0.25 off the sphere
        [-0.49, 0.25]
        >>> bool(0.4 < sdf.values[0, 16, 16] <= 0.5)  # the cube's face: a lower bound of 0.5
        True
    """
    spacing = 2.0 / (resolution - 1)
    dist = CappedDistance(tree, resolution)
    if radius is not None:
        return _closing(dist, radius, spacing)
    base = closing_radius(tree, resolution)
    lo, hi = tree.data.min(axis=0), tree.data.max(axis=0)
    box = np.prod(np.floor((hi - lo) / spacing) + 1)
    for factor in RADIUS_LADDER:
        sdf = _closing(dist, base * factor, spacing)
        if ((sdf.values < 0) & (dist.values > sdf.radius)).sum() >= min_interior * box:
            return sdf
    return sdf


def _closing(dist: CappedDistance, radius: float, spacing: float) -> GridSDF:
    dist.raise_cap(radius + EXACT_MARGIN * spacing)  # exact wherever it is compared or kept
    udf = dist.values
    free = udf > radius
    labels, _ = ndimage.label(free)
    border = np.unique(_faces_of(labels))
    outside = np.isin(labels, border[border > 0])
    if not outside.any():
        raise InputError(
            "the point cloud leaves no free space around it in the unit cube, so inside and outside "
            "cannot be told apart; check that the file holds a surface scan, not a filled volume, "
            "and drop scattered outliers first (fields3d recon --remove-outliers)"
        )
    dist_out = ndimage.distance_transform_edt(~outside) * spacing
    return GridSDF(np.where(outside, udf, radius - dist_out).astype(np.float32), radius)


def _faces_of(a: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [
            a[0].ravel(),
            a[-1].ravel(),
            a[:, 0].ravel(),
            a[:, -1].ravel(),
            a[:, :, 0].ravel(),
            a[:, :, -1].ravel(),
        ]
    )


def grid_gradient(sdf: GridSDF, x: np.ndarray) -> np.ndarray:
    """Central-difference gradient of the grid field (trilinear) at ``(N, 3)`` points."""
    values = sdf.values
    step = sdf.spacing
    out = np.empty_like(x, dtype=np.float64)
    for axis in range(3):
        offset = np.zeros(3)
        offset[axis] = step
        out[:, axis] = _trilinear(values, x + offset) - _trilinear(values, x - offset)
    return out / (2 * step)


def _trilinear(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    res = values.shape[0]
    u = np.clip((x + 1.0) * 0.5 * (res - 1), 0, res - 1 - 1e-6)
    i = np.floor(u).astype(np.int64)
    t = u - i
    out = np.zeros(len(x))
    for corner in range(8):
        d = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        w = np.prod(np.where(d, t, 1 - t), axis=1)
        c = np.minimum(i + d, res - 1)
        out += w * values[c[:, 0], c[:, 1], c[:, 2]]
    return out
