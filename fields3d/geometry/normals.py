"""Normals of a point cloud without them, and the distance the oriented points define.

PCA normals of each point's neighbourhood (:func:`pca_normals`), oriented along the gradient of a
signed distance that is right away from the surface (:func:`oriented_normals`, with the closing of
:mod:`fields3d.geometry.closing`), smoothed bilaterally on noisy scans (:func:`smooth_normals`);
the sampling and noise scale of the cloud (:func:`smoothing_scale`), and the implicit moving least
squares distance of the oriented points (:func:`imls`).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .closing import GridSDF, grid_gradient


def oriented_normals(tree: cKDTree, closing: GridSDF, k: int = 16) -> np.ndarray:
    """Unit normals of the points by PCA of their ``k`` neighbours, oriented along the closing's
    gradient (which points outward wherever the closing is right, and the closing is sign-exact
    away from the surface it fills).

    Args:
        tree: a ``scipy.spatial.cKDTree`` of the ``(N, 3)`` points (in ``[-1, 1]^3``).
        closing: the points' :func:`~fields3d.geometry.closing.closing_sdf`.
        k: neighbours per point for the PCA (capped at N).

    Returns:
        ``(N, 3)`` float64 unit normals, with ``n . grad(closing) >= 0``.

    Example:
        >>> import numpy as np
        >>> from scipy.spatial import cKDTree
        >>> points = np.random.default_rng(0).normal(size=(2000, 3))
        >>> points *= 0.5 / np.linalg.norm(points, axis=1, keepdims=True)  # (N, 3): radius 0.5
        >>> from fields3d.geometry.closing import closing_sdf
        >>> from fields3d.geometry.normals import oriented_normals
        >>> tree = cKDTree(points)
        >>> normals = oriented_normals(tree, closing_sdf(tree, resolution=33))
        >>> normals.shape, normals.dtype
        ((2000, 3), dtype('float64'))
        >>> bool((np.einsum("ni,ni->n", normals, points / 0.5) > 0.99).all())  # all outward
        True
    """
    points = tree.data
    normals, _ = pca_normals(tree, k)
    flip = np.einsum("ni,ni->n", normals, grid_gradient(closing, points)) < 0
    normals[flip] *= -1
    return normals


def pca_normals(tree: cKDTree, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unoriented PCA normals ``(N, 3)`` of the points and the RMS distance ``(N,)`` of each point's
    ``k`` neighbours from their plane (noise plus curvature).

    The normal of point ``i`` is the eigenvector of the smallest eigenvalue ``lambda_0`` of the
    covariance of its ``k`` nearest points (itself included; ``k`` capped at N), and the RMS
    distance is ``sqrt(lambda_0)``.

    Args:
        tree: a ``scipy.spatial.cKDTree`` of the ``(N, 3)`` points.
        k: neighbours per point, >= 1.

    Returns:
        ``(normals, rms)``: ``(N, 3)`` float64 unit vectors of either sign, ``(N,)`` float64.

    Example:
        >>> import numpy as np
        >>> from scipy.spatial import cKDTree
        >>> from fields3d.geometry.normals import pca_normals
        >>> rng = np.random.default_rng(0)
        >>> plane = np.column_stack([rng.random((500, 2)), 0.001 * rng.normal(size=500)])  # z ~ 0
        >>> normals, rms = pca_normals(cKDTree(plane), 16)
        >>> normals.shape, rms.shape
        ((500, 3), (500,))
        >>> bool((np.abs(normals[:, 2]) > 0.99).all()), round(float(np.median(rms)), 4)  # +-z
        (True, 0.0009)
    """
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
    ``sum_i w_i n_i.(x - p_i) / sum_i w_i`` over the ``k`` nearest points, ``w = exp(-d^2/sigma^2)``.

    Args:
        tree: a ``scipy.spatial.cKDTree`` of the ``(N, 3)`` points ``p``.
        normals: ``(N, 3)`` float64 oriented unit normals ``n`` of the points (outward: the
            distance is negative inside).
        x: ``(M, 3)`` query points.
        sigma: the kernel width ``> 0``, in the points' units.
        k: nearest points per query (capped at N). batch: queries per neighbour search.

    Returns:
        ``(M,)`` float64 signed distances.

    Example:
        >>> import numpy as np
        >>> from scipy.spatial import cKDTree
        >>> points = np.random.default_rng(0).normal(size=(2000, 3))
        >>> points *= 0.5 / np.linalg.norm(points, axis=1, keepdims=True)  # (N, 3): radius 0.5
        >>> from fields3d.geometry.normals import imls
        >>> x = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.8], [0.3, 0.0, 0.0]])  # (M, 3)
        >>> imls(cKDTree(points), points / 0.5, x, sigma=0.05).round(3)  # |x| - 0.5, near enough
        array([-0.5  ,  0.298, -0.202])
    """
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
