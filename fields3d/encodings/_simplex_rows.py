"""Compact rows for the simplex grid's directly indexed (coarse) levels.

Skewing maps the unit cube onto a parallelepiped that fills only ``(d + 1) ** ((1 - d) / 2)`` of its
bounding box (58% in 2D, 25% in 3D, 9% in 4D), so indexing a level's vertices over the whole box
wastes most of its rows. Instead each level gets a row lookup over the first ``d - 1`` skewed
coordinates (the *prefix*, flattened as ``sum_j v_j R^j`` for ``j < d - 1``): along the last axis
the vertices a point can reach form one interval ``[lo, hi]`` per prefix, stored back to back, and
``base[prefix] = start - lo`` gives a vertex's row as ``base[prefix] + v_(d-1)``.

Which vertices can a point reach? If ``v`` is a vertex of the simplex holding ``q = skew(p)``, the
offset ``e = q - v`` has coordinates in ``[-1, 1]`` with ``max(0, max e) - min(0, min e) <= 1`` (with
``f`` the sorted fractional parts, vertex ``j``'s offset spans ``1 + f_(j+1) - f_j``). Unskewing
(``u = q - t sum(q)``, ``t = k / (1 + d k)``) turns such an offset into one whose coordinates are at
most ``m = 1 - t`` in size (the largest at ``e = e_i``). As ``p`` lies in ``[0, s]^d``, every
reachable ``v`` has ``unskew(v)`` in ``[-m, s + m]^d`` (plus a little slack for float rounding):
that convex superset, cut into intervals per prefix, is what the rows cover.
"""

from __future__ import annotations

import math

import torch

# Float rounding of q = skew(x * s) can move floor(q) by one where q sits on an integer: slack
# (absolute, and relative to the scale) added to the margin so such vertices stay inside.
_SLACK_ABS, _SLACK_REL = 1e-3, 1e-5


def simplex_resolution(scale: float, d: int) -> int:
    """Vertices per skewed axis: coordinates reach ``scale * sqrt(d + 1)`` (plus one for the far
    vertex, plus one so float rounding at the far corner stays inside)."""
    return math.floor(scale * math.sqrt(d + 1.0)) + 3


def _row_bounds(
    scale: float, resolution: int, d: int, skew: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)`` over the last skewed axis for every prefix (float64, before rounding)."""
    t = skew / (1.0 + d * skew)
    margin = 1.0 - t + _SLACK_ABS + _SLACK_REL * scale
    axes = [torch.arange(resolution, dtype=torch.float64)] * (d - 1)
    prefix = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, d - 1)
    prefix = prefix.flip(
        -1
    )  # meshgrid 'ij' runs the last axis fastest; the core flattens v_0 fastest
    total = prefix.sum(dim=1)
    lower = [torch.zeros_like(total), (t * total - margin) / (1.0 - t)]
    upper = [torch.full_like(total, resolution - 1.0), (t * total + scale + margin) / (1.0 - t)]
    for j in range(d - 1):
        centre = prefix[:, j] - t * total
        lower.append((centre - scale - margin) / t)
        upper.append((centre + margin) / t)
    return torch.stack(lower).amax(dim=0), torch.stack(upper).amin(dim=0)


def row_intervals(
    scale: float, resolution: int, d: int, skew: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer ``(lo, hi)`` of the reachable last-axis coordinates for each prefix (``lo > hi``:
    none), int64, indexed by ``sum_j v_j R^j`` over ``j < d - 1``."""
    lo, hi = _row_bounds(scale, resolution, d, skew)
    return torch.ceil(lo).long(), torch.floor(hi).long()


def row_lookup(scale: float, resolution: int, d: int, skew: float) -> tuple[torch.Tensor, int]:
    """``(base, rows)``: the level's lookup (``base[prefix] + v_(d-1)`` is a vertex's row; int64,
    ``resolution ** (d - 1)`` entries) and how many rows its reachable vertices take."""
    lo, hi = row_intervals(scale, resolution, d, skew)
    length = (hi - lo + 1).clamp_min(0)
    start = torch.cumsum(length, 0) - length
    base = torch.where(length > 0, start - lo, torch.zeros_like(lo))
    return base, int(length.sum())
