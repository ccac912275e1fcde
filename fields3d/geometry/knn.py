"""K nearest centers of query points: the core's uniform-grid neighbour search (CPU and CUDA).

The core (``cuda/geometry/knn.h`` states the rule exactly) sorts the centers into a uniform
grid over their bounding box, about ``k`` centers per cell, by counting sort, and searches rings
of cells outward from each query's cell until ``k`` candidates are held and no unscanned cell can
beat the ``k``-th. Results are ordered by (squared distance, center index): ties go to the lower
index, whatever the device or thread count. The RBF encoding (:mod:`fields3d.encodings.rbf`)
finds its bases with it, and GridPull (:mod:`fields3d.pipelines.recon.gridpull`) its points'
neighbours.

On CUDA the grid is built on the device too (count, scan, scatter), and the search runs there, one
thread per query; the only synchronisation is reading back the centers' bounding box (2D numbers),
which sizes the grid.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import _core_ops, _native
from .._checks import check_dense, dtype_str, is_int, shape_str
from ..errors import InputError

MAX_K = 32


class KnnResult(NamedTuple):
    """The ``k`` nearest centers of each point, nearest first."""

    indices: torch.Tensor  # (N, k) int64 rows of ``centers``; -1 for a point with a NaN coordinate
    dist2: (
        torch.Tensor
    )  # (N, k) squared Euclidean distances, in the centers' dtype; NaN for such a point


def _check(centers, points, k) -> None:
    want = "centers must be a float32 or float64 tensor of shape (M, 2) or (M, 3)"
    if not isinstance(centers, torch.Tensor):
        raise InputError(f"{want}, got {type(centers).__name__}")
    check_dense("centers", centers)
    if (
        centers.dtype not in (torch.float32, torch.float64)
        or centers.dim() != 2
        or centers.shape[1] not in (2, 3)
    ):
        raise InputError(f"{want}, got {dtype_str(centers.dtype)} {shape_str(centers)}")
    if centers.shape[0] == 0:
        raise InputError("centers must hold at least one center, got (0, D)")
    d = centers.shape[1]
    want = f"points must be {dtype_str(centers.dtype)} of shape (N, {d})"
    if not isinstance(points, torch.Tensor):
        raise InputError(f"{want}, got {type(points).__name__}")
    check_dense("points", points)
    if points.dtype != centers.dtype or points.dim() != 2 or points.shape[1] != d:
        raise InputError(f"{want}, got {dtype_str(points.dtype)} {shape_str(points)}")
    if points.device != centers.device:
        raise InputError(
            f"points must be on {centers.device} like centers, got {points.device}; move one of them with .to(device)"
        )
    most = min(MAX_K, centers.shape[0])
    if not is_int(k) or not 1 <= k <= most:
        raise InputError(f"k must be an integer from 1 to min(32, M) = {most}, got {k!r}")
    _native.check_backend(centers.device)


@torch.no_grad()
def knn(centers: torch.Tensor, points: torch.Tensor, k: int) -> KnnResult:
    """The ``k`` nearest ``centers`` of every point, by the core's grid search.

    Args:
        centers: ``(M, D)`` float32 or float64, ``D`` = 2 or 3, ``M >= 1``, finite.
        points: ``(N, D)`` queries in the centers' dtype and device (any ``N``, 0 included; a point
            with a NaN coordinate gets indices -1 and distances NaN).
        k: from 1 to ``min(32, M)``.

    Returns:
        :class:`KnnResult` ``(indices (N, k) int64, dist2 (N, k))``, sorted by squared distance,
        ties by the lower center index. Not differentiable (computed under ``no_grad``).

    Raises:
        InputError: wrong dtypes, shapes or devices, ``k`` out of range, or non-finite centers.

    Example:
        >>> import torch
        >>> from fields3d.geometry.knn import knn
        >>> centers = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # (M, 3)
        >>> points = torch.tensor([[0.9, 0.1, 0.0], [0.0, 1.2, 0.0]])  # (N, 3)
        >>> indices, dist2 = knn(centers, points, k=2)
        >>> indices  # (N, k) int64, nearest first
        tensor([[1, 0],
                [2, 0]])
        >>> dist2  # (N, k) squared distances
        tensor([[0.0200, 0.8200],
                [0.6400, 1.4400]])
    """
    _check(centers, points, k)
    centers, points = centers.detach().contiguous(), points.detach().contiguous()
    m, d = centers.shape
    box = torch.cat([centers.amin(dim=0), centers.amax(dim=0)]).tolist()  # one device sync
    if not all(abs(v) < float("inf") for v in box):
        raise InputError("centers must be finite (found NaN or inf)")
    lo, hi = box[:d], box[d:]
    cell, resolution = _core_ops.knn_grid_shape(lo, hi, m, k)
    n_cells = 1
    for r in resolution:
        n_cells *= r
    cell_start = torch.empty(n_cells + 1, dtype=torch.int64, device=centers.device)
    order = torch.empty(m, dtype=torch.int64, device=centers.device)
    indices = torch.empty(points.shape[0], k, dtype=torch.int64, device=centers.device)
    dist2 = torch.empty(points.shape[0], k, dtype=centers.dtype, device=centers.device)
    c = _native.capsule
    _core_ops.knn(
        c(centers),
        c(points),
        k,
        lo,
        cell,
        resolution,
        c(cell_start),
        c(order),
        c(indices),
        c(dist2),
        _native.stream_of(centers.device),
    )
    return KnnResult(indices, dist2)
