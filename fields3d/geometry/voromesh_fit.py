"""VoroMesh fitting: move Voronoi generators so that their faces pass through target surface points.

The loss is the paper's *VoroLoss* (Maruani et al., ICCV 2023, section 3.2; ``Voroloss_opt`` in
its code): for a target point ``p`` whose nearest generator is ``g_0`` and whose next ``k - 1``
nearest generators are ``g_1 .. g_{k-1}``, the distance from ``p`` to the face of ``g_0``'s cell
towards ``g_j`` is approximated by the distance to their bisector plane,

    d_j(p) = (p - g_0) . (g_j - g_0) / |g_j - g_0| - |g_j - g_0| / 2,

and the loss is the mean over the points of ``min_j d_j(p)^2``: each point pulls the nearest face
of the cell it lies in onto itself. The neighbours are chosen without gradient (a scipy cKDTree,
rebuilt each step); the distances are differentiable in the generators (and the points). The loss
does not use occupancy: as in the paper, the generators are fitted first and labelled inside or
outside afterwards, by the sign of a signed distance at their cells' centroids. The paper's
direct optimisation uses no regulariser, and neither does :func:`fit_generators`; it clamps the
generators to ``[-1, 1]^3`` after each step, as the paper does.

Initialisation (:func:`grid_generators`): the corners of the voxels of a regular grid over
``[-1, 1]^3`` that hold a target point, the paper's ``mask_relevant_voxels``;
:func:`resolution_for` picks the grid whose count of such corners is nearest a wanted number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree

from .._checks import check_int, check_seed
from ..errors import InputError

#: Neighbours per target point: its cell's generator and 10 candidates for the nearest face (the paper's).
K = 11
#: The grid resolutions :func:`resolution_for` searches.
MIN_RESOLUTION, MAX_RESOLUTION = 4, 1024


def voro_loss(
    points: torch.Tensor,  # (M, 3) target surface points
    generators: torch.Tensor,  # (N, 3)
    neighbours: torch.Tensor,  # (M, k) int64: each point's nearest generator first, then k - 1 more
) -> torch.Tensor:
    """The VoroLoss: mean over the points of the squared distance to the nearest bisector plane
    between their nearest generator and one of the other ``k - 1`` neighbours (module docstring).

    Args:
        points: ``(M, 3)`` float, M >= 1. generators: ``(N, 3)`` float, same dtype and device.
        neighbours: ``(M, k)`` int64 generator ids, k >= 2, column 0 each point's nearest
            (:func:`nearest_generators`).

    Returns:
        A scalar tensor, differentiable in ``points`` and ``generators``.

    Example:
        >>> import torch
        >>> from fields3d.geometry.voromesh_fit import voro_loss
        >>> generators = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], requires_grad=True)
        >>> points = torch.tensor([[0.25, 0.0, 0.0], [0.5, 3.0, 0.0]])  # 0.25 and 0 from x = 0.5
        >>> loss = voro_loss(points, generators, torch.tensor([[0, 1], [0, 1]]))
        >>> loss.item()  # (0.25^2 + 0^2) / 2
        0.03125
        >>> loss.backward(); generators.grad[:, 0].tolist()  # the bisector moves towards 0.25
        [0.125, 0.125]
    """
    g0 = generators[neighbours[:, 0]]  # (M, 3)
    edge = generators[neighbours[:, 1:]] - g0[:, None, :]  # (M, k - 1, 3)
    length = edge.norm(dim=-1)
    along = ((points - g0)[:, None, :] * edge).sum(-1) / length
    return (along - length / 2).square().min(dim=1).values.mean()


def nearest_generators(points: np.ndarray, generators: np.ndarray, k: int = K) -> np.ndarray:
    """``(M, min(k, N))`` int64: the ids of each point's nearest generators, nearest first.

    ``points`` ``(M, 3)``, ``generators`` ``(N, 3)``, float (numpy). Example in :func:`fit_generators`.
    """
    k = min(k, len(generators))
    workers = -1 if len(points) * k > 2**18 else 1  # threads are started per query: small ones lose
    _, ids = cKDTree(generators).query(points, k=k, workers=workers)
    return np.asarray(ids, dtype=np.int64).reshape(len(points), k)


def grid_generators(points: np.ndarray, resolution: int) -> np.ndarray:
    """The corners of the voxels that hold a point, on ``resolution``^3 grid points over ``[-1, 1]^3``.

    Args:
        points: ``(M, 3)`` float in ``[-1, 1]^3``. resolution: grid points per axis, >= 2.

    Returns:
        ``(G, 3)`` float64 grid points, sorted by grid index.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry.voromesh_fit import grid_generators
        >>> grid_generators(np.array([[0.1, 0.1, 0.1]]), 3).tolist()[:2]  # the voxel [0, 1]^3
        [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
        >>> len(grid_generators(np.array([[0.1, 0.1, 0.1], [0.2, 0.3, 0.9]]), 3))  # one voxel
        8
    """
    check_int("resolution", resolution, 2)
    return -1.0 + 2.0 * _corners(points, resolution) / (resolution - 1)


def resolution_for(points: np.ndarray, n_generators: int) -> int:
    """The grid resolution (points per axis) whose :func:`grid_generators` count is nearest
    ``n_generators``, searched from :data:`MIN_RESOLUTION` to :data:`MAX_RESOLUTION`.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry.voromesh_fit import grid_generators, resolution_for
        >>> rng = np.random.default_rng(0)
        >>> sphere = rng.normal(size=(20000, 3))
        >>> sphere = 0.8 * sphere / np.linalg.norm(sphere, axis=1, keepdims=True)
        >>> res = resolution_for(sphere, 5000)
        >>> res, abs(len(grid_generators(sphere, res)) - 5000) < 600
        (31, True)
    """
    check_int("n_generators", n_generators, 1)
    lo, hi = MIN_RESOLUTION, MAX_RESOLUTION
    while hi - lo > 1:  # the count grows with the resolution
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if len(_corners(points, mid)) < n_generators else (lo, mid)
    return min((lo, hi), key=lambda r: abs(len(_corners(points, r)) - n_generators))


def fit_generators(
    generators: np.ndarray,
    points: np.ndarray,
    *,
    steps: int,
    lr: float,
    batch_fraction: float = 0.2,
    k: int = K,
    milestones: tuple[float, ...] = (0.2, 0.375, 0.5, 0.625),
    gamma: float = 0.5,
    seed: int = 0,
    update: Callable[[int, float], None] | None = None,
) -> tuple[np.ndarray, list[float]]:
    """Adam on the :func:`voro_loss` of ``points`` for ``steps`` steps (the paper's schedule).

    Each step draws ``batch_fraction`` of the points, finds their ``k`` nearest generators, takes
    one Adam step (float32, as the paper's) and clamps the generators to ``[-1, 1]^3``. The learning rate is multiplied by
    ``gamma`` at the ``milestones`` fractions of the steps (the paper: 80, 150, 200 and 250 of 400).

    Args:
        generators: ``(N, 3)`` float initial generators in ``[-1, 1]^3``, N >= 2.
        points: ``(M, 3)`` float target surface points in ``[-1, 1]^3``, M >= 1.
        steps: >= 0. lr: Adam's learning rate, > 0. batch_fraction: in ``(0, 1]``.
        k: neighbours per point, >= 2. seed: the batches' random draws.
        update: called as ``update(step, loss)`` after every step.

    Returns:
        The fitted generators ``(N, 3)`` float64 (float32 values) and the loss of every step.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry.voromesh_fit import fit_generators
        >>> generators = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0]])  # bisector x = 0
        >>> points = np.random.default_rng(0).uniform(-0.5, 0.5, (100, 3)) * [0, 1, 1] + [0.2, 0, 0]
        >>> fitted, losses = fit_generators(generators, points, steps=200, lr=0.01)
        >>> round(float(fitted[:, 0].mean()), 2), losses[-1] < 1e-4  # the bisector reached x = 0.2
        (0.2, True)
    """
    check_int("steps", steps, 0)
    check_int("k", k, 2)
    check_seed(seed)
    if not (isinstance(lr, (int, float)) and 0 < lr < np.inf):
        raise InputError(f"lr must be a finite number > 0, got {lr!r}")
    if not (isinstance(batch_fraction, (int, float)) and 0 < batch_fraction <= 1):
        raise InputError(f"batch_fraction must be a number in (0, 1], got {batch_fraction!r}")
    g = torch.tensor(np.asarray(generators), dtype=torch.float32, requires_grad=True)
    targets = np.asarray(points, dtype=np.float32)
    opt = torch.optim.Adam([g], lr=lr)
    marks = sorted({max(1, round(f * steps)) for f in milestones})
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, marks, gamma=gamma)
    rng = np.random.default_rng([seed, 7])
    batch = max(1, round(batch_fraction * len(targets)))
    losses = []
    for step in range(1, steps + 1):
        pick = targets[rng.choice(len(targets), batch, replace=False)]
        ids = nearest_generators(pick, g.detach().numpy(), k)
        loss = voro_loss(torch.from_numpy(pick), g, torch.from_numpy(ids))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        with torch.no_grad():
            g.clamp_(-1.0, 1.0)
        losses.append(loss.item())
        if update is not None:
            update(step, losses[-1])
    return g.detach().numpy().astype(np.float64), losses


def _corners(points: np.ndarray, resolution: int) -> np.ndarray:
    """``(G, 3)`` int64 grid indices of the corners of the voxels holding ``points``, unique, sorted."""
    voxel = np.floor((np.asarray(points) + 1.0) / 2.0 * (resolution - 1)).astype(np.int64)
    voxel = np.clip(voxel, 0, resolution - 2)
    offsets = np.array([(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    corners = (np.unique(voxel, axis=0)[:, None, :] + offsets).reshape(-1, 3)
    return np.unique(corners, axis=0)
