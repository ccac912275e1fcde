"""Where the edit happened: a 3D relevance grid segmented by a graph cut into the edit mask.

Two sources of relevance, one segmentation:

- **Attention** (a prior with a UNet): each view's cross-attention map for the edit's tokens
  (:mod:`fields3d.guidance.attention`) is spread along the view's rays into the voxel grid:
  every sample of pixel ``p`` adds ``w_s * a_p`` to the vertex nearest its position and ``w_s``
  to that vertex's weight (``w_s`` the sample's compositing weight), and the grid is their
  ratio (:func:`back_project`) — the attention of the surface each pixel shows. Views are
  accumulated before dividing.
- **Departure** (target guidance, no attention): where the renders of the edited grid departed
  from the original's, ``max_c |after - before|`` per pixel, back-projected the same way
  through both grids (:func:`seen_change`): what changed visibly, not what moved unseen inside.

:func:`graph_cut` turns either into a mask: relevance normalised by its largest value becomes a
probability ``p = sigmoid(SHARPNESS * (r - threshold))``, the unary costs are ``-log(1 - p)``
(keep the original) and ``-log p`` (take the edit), and neighbouring vertices (6-connected) pay
``smoothness * exp(-(d_a - d_b)^2 / (2 s^2))`` to be labelled apart, ``d`` the edited density
normalised by its 99th percentile and ``s = 0.1``: cuts follow density edges (Vox-E's
segmentation energy; solved exactly by PyMaxflow's Boykov-Kolmogorov max-flow).
"""

from __future__ import annotations

import torch

from ...errors import BackendUnavailable
from ...render.cameras import Cameras, image_rays
from ...render.composite import render_samples
from ...render.march import GridSpec, march_rays
from ...render.volume import prune_samples
from .grid import VoxelField, cell_size

SHARPNESS = 12.0
EDGE_SCALE = 0.1
EPS = 1e-6


@torch.no_grad()
def back_project(
    field: VoxelField,
    cameras: Cameras,
    maps: torch.Tensor,  # (B, H, W)
    step: float,
    accum: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Add ``maps`` (one per camera, the cameras' size) seen through ``field`` into
    ``(sum w a, sum w)`` over the vertices (``(R, R, R)`` each, ``[x, y, z]``); pass the pair
    back as ``accum`` to add more views, and divide at the end (module docstring)."""
    r = field.resolution
    device = field.lo.device
    num, den = accum or (torch.zeros(r, r, r, device=device), torch.zeros(r, r, r, device=device))
    spec = GridSpec.from_aabb(field.aabb.tolist())
    for b in range(len(cameras)):
        origins, dirs = image_rays(cameras.to(device), b)
        samples = march_rays(origins, dirs, spec, step=step)
        samples = prune_samples(field, samples, origins, dirs, 1e-4)
        if not samples.n_samples:
            continue
        x = samples.midpoints(origins, dirs)
        sigma, rgb = field(x)
        w = render_samples(samples, sigma.to(x.dtype), rgb.to(x.dtype))["weights"].float()
        a = maps[b].reshape(-1).to(device).float()[samples.ray_ids]
        u = ((x.float() - field.lo) / (field.hi - field.lo)).clamp(0, 1)
        ijk = (u * (r - 1)).round().long()
        flat = (ijk[:, 0] * r + ijk[:, 1]) * r + ijk[:, 2]
        num.view(-1).index_add_(0, flat, w * a)
        den.view(-1).index_add_(0, flat, w)
    return num, den


@torch.no_grad()
def seen_change(
    original: VoxelField,
    edited: VoxelField,
    cameras: Cameras,
    background: torch.Tensor,
    step: float,
) -> torch.Tensor:
    """``(R, R, R)`` where the renders departed: each view's per-pixel change
    ``max_c |edited - original|`` back-projected through both grids (:func:`back_project`) and
    averaged: matter added shows on the edited grid's surfaces, matter removed on the original's,
    and changes no view can see (inside the object) score nothing."""
    from .model import render_views

    before = render_views(original, cameras, background, step)["color"]
    after = render_views(edited, cameras, background, step)["color"]
    change = (after - before).abs().amax(dim=1)  # (B, H, W)
    total = None
    for field in (original, edited):
        total = back_project(field, cameras, change, step, total)
    return relevance(total)


def confidence(
    original: VoxelField, edited: VoxelField, cameras: Cameras, step: float
) -> torch.Tensor:
    """``(R, R, R)`` in ``[0, 1]``: how well the relevance of each vertex is known. Seen by the
    cameras (the compositing weights landing on it from either grid's surfaces, summed, capped at
    1), or empty in both grids (nothing there to edit); the inside of matter is unknown."""
    ones = torch.ones(len(cameras), cameras.height, cameras.width)
    total = None
    for field in (original, edited):
        total = back_project(field, cameras, ones, step, total)
    cell = cell_size(original)
    with torch.no_grad():
        matter = torch.maximum(original.density_grid(), edited.density_grid())
    empty = torch.exp(-matter * cell)  # 1 - the cell's opacity
    return torch.maximum(total[1].clamp(0, 1), empty)


def relevance(accum: tuple[torch.Tensor, torch.Tensor], min_weight: float = 1e-3) -> torch.Tensor:
    """``(R, R, R)`` mean attention per vertex of :func:`back_project`'s sums (0 where no view
    saw it with at least ``min_weight``)."""
    num, den = accum
    return torch.where(den > min_weight, num / den.clamp_min(EPS), torch.zeros_like(num))


def graph_cut(
    score: torch.Tensor,  # (R, R, R)
    density: torch.Tensor,  # (R, R, R)
    threshold: float = 0.3,
    smoothness: float = 1.0,
    confidence: torch.Tensor | None = None,  # (R, R, R) in [0, 1]
) -> torch.Tensor:
    """The edit mask ``(R, R, R)`` bool (True: take the edited voxel) of a relevance ``score``
    and the edited ``density``, both ``[x, y, z]`` (module docstring). ``confidence``: how well
    the views saw each vertex (1 by default); an unseen vertex's probability is 1/2, so its
    label follows its neighbours' (the inside of an added part, which no view sees).

    Raises:
        BackendUnavailable: PyMaxflow is not installed (``pip install 'fields3d[generate]'``).

    Example:
        >>> import torch
        >>> from fields3d.pipelines.edit.localise import graph_cut
        >>> score = torch.zeros(8, 8, 8)
        >>> score[2:5, 2:5, 2:5] = 1.0  # a relevant cube
        >>> score[6, 6, 6] = 0.5  # and a lone speck, half as relevant
        >>> mask = graph_cut(score, torch.ones(8, 8, 8), threshold=0.3, smoothness=2.0)
        >>> int(mask.sum()), bool(mask[3, 3, 3]), bool(mask[6, 6, 6])  # the speck is smoothed away
        (27, True, False)
    """
    try:
        import maxflow
    except ImportError:
        raise BackendUnavailable(
            "localising an edit needs PyMaxflow (the graph cut): pip install 'fields3d[generate]'"
        ) from None
    top = float(score.max())
    r = (score / top).double().cpu().numpy() if top > 0 else score.double().cpu().numpy() * 0
    p = torch.sigmoid(SHARPNESS * (torch.from_numpy(r) - threshold))
    if confidence is not None:
        c = confidence.double().cpu().clamp(0, 1)
        p = c * p + (1 - c) * 0.5
    p = p.clamp(EPS, 1 - EPS)
    keep_cost, edit_cost = (-torch.log(1 - p)).numpy(), (-torch.log(p)).numpy()
    d = density.double().cpu()
    d = d / torch.quantile(d.flatten()[:: max(1, d.numel() // 1_000_000)], 0.99).clamp_min(EPS)
    d = d.clamp(0, 1)
    graph = maxflow.Graph[float]()
    nodes = graph.add_grid_nodes(tuple(score.shape))
    for axis in range(3):
        diff = torch.diff(d, dim=axis, append=d.narrow(axis, d.shape[axis] - 1, 1))
        weights = smoothness * torch.exp(-(diff**2) / (2 * EDGE_SCALE**2))
        structure = torch.zeros(3, 3, 3, dtype=torch.float64)
        structure[tuple(2 if a == axis else 1 for a in range(3))] = 1
        graph.add_grid_edges(nodes, weights.numpy(), structure.numpy(), symmetric=True)
    # a node on the sink side (get_grid_segments True) is cut from the source and pays its
    # source capacity: the sink side is "edit"
    graph.add_grid_tedges(nodes, edit_cost, keep_cost)
    graph.maxflow()
    return torch.from_numpy(graph.get_grid_segments(nodes)).to(score.device)
