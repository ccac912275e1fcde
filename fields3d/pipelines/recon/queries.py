"""The queries of GridPull and Neural-Pull: points drawn around the input points, each paired with
the input point nearest to it, which the fits pull it onto.

``q = p + sigma_p * N(0, I)`` for ``queries_per_point`` queries around each point ``p``, with
``sigma_p`` the distance of ``p`` to its ``sigma_k``-th neighbour, clipped to ``[-1, 1]^3``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from ...geometry.knn import MAX_K, knn


def neighbours(
    tree: cKDTree,
    queries: np.ndarray,
    k: int,
    core_device: torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, indices)``, both ``(n, k)``: the ``k`` input points nearest each query, nearest first.

    Without ``core_device``: scipy's cKDTree (the CPU path). With it: the core's uniform-grid
    search (:func:`~fields3d.geometry.knn.knn`, float64) on that device, the GPU path,
    where a KD-tree would be a trip through the host. Both find the same neighbours up to exact
    ties (the core breaks them by the lower index); ``k`` over the core's limit uses the KD-tree.
    """
    if core_device is None or k > MAX_K:
        dist, idx = tree.query(queries, k=[k] if k == 1 else k, workers=-1)
        return dist.reshape(len(queries), k), idx.reshape(len(queries), k)
    points = torch.from_numpy(np.ascontiguousarray(tree.data)).to(core_device)
    found = knn(points, torch.from_numpy(queries).to(core_device, torch.float64), k)
    return found.dist2.clamp_min(0).sqrt().cpu().numpy(), found.indices.cpu().numpy()


def sample_queries(
    tree: cKDTree,
    rng: np.random.Generator,
    queries_per_point: int,
    sigma_k: int,
    core_device: torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(queries, targets)``, both ``(N * queries_per_point, 3)`` float32: ``queries_per_point``
    Gaussian queries around each of the ``N`` points of ``tree`` (in point order, offsets drawn from
    ``rng``) and the input point nearest to each, both searched as :func:`neighbours` does (on
    ``core_device`` if given). ``sigma_k`` is capped at ``N - 1``."""
    pts = tree.data
    k = min(sigma_k, len(pts) - 1)
    dist, _ = neighbours(tree, pts, k + 1, core_device)
    sigma = dist[:, -1:]
    rep = np.repeat(np.arange(len(pts)), queries_per_point)
    q = pts[rep] + rng.standard_normal((len(rep), 3)) * sigma[rep]
    q = np.clip(q, -1.0, 1.0)
    _, nearest = neighbours(tree, q, 1, core_device)
    return q.astype(np.float32), pts[nearest[:, 0]].astype(np.float32)
