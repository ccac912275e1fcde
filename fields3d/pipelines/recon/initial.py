"""A first signed distance for a point cloud without normals: the morphological closing.

The sign of a distance field is what a point cloud does not tell. We take it from the space the
points enclose: on a coarse lattice over ``[-1, 1]^3`` every lattice point farther than ``radius``
from all input points is free space, and the free space connected to the lattice border is the
outside. Inflating the outside back by ``radius`` (a Euclidean distance transform) gives

    sdf0(x) = radius - dist(x, outside)     (inside the inflated outside: the distance to the points)

which is the signed distance to the *closing* of the shape by a ball of that radius: exact on
convex parts, closed across holes and gaps narrower than ``2 radius`` (scan holes, sparse
sampling), and filled in concavities narrower than that. GridPull and the neural SDF start from it
and pull the surface onto the points; the GridPull paper starts from a sphere instead, which gets
the sign wrong wherever the shape is not star-shaped (see ``gridpull.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ...errors import InputError


@dataclass
class LatticeSDF:
    """Values of a field on the lattice of ``resolution`` points per axis spanning ``[-1, 1]^3``."""

    values: np.ndarray  # (R, R, R) float32, values[i, j, k] at -1 + (i, j, k) * spacing
    radius: float  # closing radius used, in unit-cube units

    @property
    def resolution(self) -> int:
        return self.values.shape[0]

    @property
    def spacing(self) -> float:
        return 2.0 / (self.resolution - 1)


def lattice_points(resolution: int) -> np.ndarray:
    """``(R^3, 3)`` float32 coordinates of the lattice, in ``values.reshape(-1)`` order."""
    axis = np.linspace(-1.0, 1.0, resolution, dtype=np.float32)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def closing_radius(tree: cKDTree, resolution: int, k: int = 8, quantile: float = 0.99) -> float:
    """A ball radius that no sampling gap slips through: at least 2 lattice spacings, and at least
    the ``quantile`` of each point's distance to its ``k``-th neighbour (the typical gap width)."""
    spacing = 2.0 / (resolution - 1)
    dist, _ = tree.query(tree.data, k=k + 1, workers=-1)
    return float(max(2.0 * spacing, np.quantile(dist[:, -1], quantile)))


RADIUS_LADDER = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


def closing_sdf(
    tree: cKDTree, resolution: int = 96, radius: float | None = None, min_interior: float = 0.01
) -> LatticeSDF:
    """The closing's signed distance (negative inside) on a ``resolution``^3 lattice.

    With ``radius=None`` the radius grows along ``RADIUS_LADDER`` times :func:`closing_radius`
    until the inside holds free space (lattice points farther than the radius from every point)
    amounting to ``min_interior`` of the lattice points in the cloud's bounding box: a scan with
    holes (the Stanford bunny's base) leaks the outside into the object at small radii.

    Raises InputError when the points leave no outside at all (they fill the cube).
    """
    spacing = 2.0 / (resolution - 1)
    udf, _ = tree.query(lattice_points(resolution), k=1, workers=-1)
    udf = udf.reshape((resolution,) * 3)
    if radius is not None:
        return _closing(udf, radius, spacing)
    base = closing_radius(tree, resolution)
    lo, hi = tree.data.min(axis=0), tree.data.max(axis=0)
    box = np.prod(np.floor((hi - lo) / spacing) + 1)
    for factor in RADIUS_LADDER:
        sdf = _closing(udf, base * factor, spacing)
        if ((sdf.values < 0) & (udf > sdf.radius)).sum() >= min_interior * box:
            return sdf
    return sdf


def _closing(udf: np.ndarray, radius: float, spacing: float) -> LatticeSDF:
    free = udf > radius
    labels, _ = ndimage.label(free)
    border = np.unique(_faces_of(labels))
    outside = np.isin(labels, border[border > 0])
    if not outside.any():
        raise InputError(
            "the point cloud leaves no free space around it in the unit cube, so inside and outside "
            "cannot be told apart; check that the file holds a surface scan, not a filled volume"
        )
    dist_out = ndimage.distance_transform_edt(~outside) * spacing
    return LatticeSDF(np.where(outside, udf, radius - dist_out).astype(np.float32), radius)


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


def lattice_gradient(sdf: LatticeSDF, x: np.ndarray) -> np.ndarray:
    """Central-difference gradient of the lattice field (trilinear) at ``(N, 3)`` points."""
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


def oriented_normals(tree: cKDTree, closing: LatticeSDF, k: int = 16) -> np.ndarray:
    """Unit normals of the points by PCA of their ``k`` neighbours, oriented along the closing's
    gradient (which points outward wherever the closing is right, and the closing is sign-exact
    away from the surface it fills)."""
    points = tree.data
    normals, _ = pca_normals(tree, k)
    flip = np.einsum("ni,ni->n", normals, lattice_gradient(closing, points)) < 0
    normals[flip] *= -1
    return normals


def pca_normals(tree: cKDTree, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unoriented PCA normals ``(N, 3)`` of the points and the RMS distance ``(N,)`` of each point's
    ``k`` neighbours from their plane (noise plus curvature)."""
    points = tree.data
    _, idx = tree.query(points, k=min(k, len(points)), workers=-1)
    nb = points[idx] - points[idx].mean(axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb) / idx.shape[1])
    return vectors[:, :, 0], np.sqrt(np.maximum(values[:, 0], 0.0))


def smoothing_scale(tree: cKDTree, k: int = 16) -> tuple[float, float]:
    """``(spacing, noise)``: the median distance of a point to its 8th neighbour, and the median RMS
    distance of 16 neighbours from their plane, which is the noise level on a scan whose
    curvature is small at the sampling scale."""
    spacing = float(
        np.median(tree.query(tree.data, k=min(9, len(tree.data)), workers=-1)[0][:, -1])
    )
    return spacing, float(np.median(pca_normals(tree, k)[1]))


def smooth_normals(
    tree: cKDTree, normals: np.ndarray, k: int, power: float = 8.0, iterations: int = 2
) -> np.ndarray:
    """Oriented unit normals averaged over each point's ``k`` nearest neighbours (itself included),
    ``iterations`` times, and normalised again: on a noisy scan the PCA normal of one neighbourhood
    wobbles with the noise, and the IMLS distance inherits the wobble as bumps.

    The average is bilateral: neighbour j counts with weight ``((1 + n_i . n_j) / 2) ** power``, so
    on thin parts (a cow's ears and legs, narrower than the neighbourhood) the opposite side's
    normals (weight ~0) do not pull n_i round, and normals across a crease mix less. The point
    itself is left out of its average: a normal the orientation got wrong then still turns to its
    neighbours (their weights are tiny but the direction is theirs). (Noisy cow, 50k points:
    normal consistency 0.945 with a plain mean over 32, see benchmarks/RESULTS.md.)"""
    k = min(k, len(tree.data))
    if k < 2:
        return normals
    _, idx = tree.query(tree.data, k=k, workers=-1)
    idx = idx[:, 1:]  # without the point itself
    out = normals
    for _ in range(iterations):
        near = out[idx]
        w = (0.5 * (1.0 + np.einsum("nkd,nd->nk", near, out))) ** power
        mean = np.einsum("nk,nkd->nd", w, near)
        norm = np.linalg.norm(mean, axis=1, keepdims=True)
        out = np.where(norm > 1e-300, mean / np.maximum(norm, 1e-300), out)
    return out


def imls(
    tree: cKDTree,
    normals: np.ndarray,
    x: np.ndarray,
    sigma: float,
    k: int = 16,
    batch: int = 1 << 18,
) -> np.ndarray:
    """Implicit moving least squares distance at ``(M, 3)`` points x (Kolluri 2005):
    ``sum_i w_i n_i.(x - p_i) / sum_i w_i`` over the ``k`` nearest points, ``w = exp(-d^2/sigma^2)``."""
    out = np.empty(len(x), dtype=np.float64)
    points = tree.data
    for start in range(0, len(x), batch):
        xb = x[start : start + batch]
        dist, idx = tree.query(xb, k=min(k, len(points)), workers=-1)
        w = np.exp(
            -((dist - dist[:, :1]) * (dist + dist[:, :1])) / sigma**2
        )  # shifted: no underflow
        plane = np.einsum("nki,nki->nk", normals[idx], xb[:, None, :] - points[idx])
        out[start : start + batch] = (w * plane).sum(1) / w.sum(1)
    return out
