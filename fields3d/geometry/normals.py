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
    away from the surface it fills)."""
    points = tree.data
    normals, _ = pca_normals(tree, k)
    flip = np.einsum("ni,ni->n", normals, grid_gradient(closing, points)) < 0
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
