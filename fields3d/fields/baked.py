"""A radiance field baked into a dense grid for fast previews: ``bake_radiance``.

Rendering a trained NeRF costs a hash-grid lookup and two MLPs per sample; a viewer whose camera
moves needs frames faster than that. :func:`bake_radiance` evaluates a field once at the vertices
of a dense grid aligned with its occupancy grid (``factor`` grid cells per occupancy cell per
axis) and keeps, per vertex, the density and a first-order view model of the colour: the colours
seen along the six axis directions give ``c(d) = c0 + A d`` (``c0`` their mean, column ``k`` of
``A`` half the difference of ``+e_k`` and ``-e_k``: the least-squares fit of a linear function of
the direction to those six). :class:`BakedRadiance` interpolates that table trilinearly through the
core's dense-grid encoding, so a sample costs one lookup of 13 values. With
``view_dependent=False`` only the mean colour ``c0`` is kept: 4 values a sample, about 40% less
time a frame (measured on the shipped spot NeRFs: 63 against 103 ms at 256^2 on 2 cores, 0.2 dB
lower against the field's frame on that view-independent scene).

Only vertices of cells the occupancy grid marks occupied are evaluated (the marcher never samples
elsewhere); the rest hold zero density. Only the grid's finest level is baked: outside it the
baked field is empty. The colour is clamped to ``[0, 1]``.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_int
from ..encodings.dense_grid import DenseGridConfig, dense_grid_encode

CHANNELS = 13  # density, c0 (3), A (3 x 3, row-major: colour channel, direction axis)
DIFFUSE_CHANNELS = 4  # density, c0: the colour averaged over directions
CHUNK = 1 << 16  # vertices per field query while baking
MAX_VERTICES_PER_AXIS = 257


class BakedRadiance(nn.Module):
    """A radiance field read from a baked table (module docstring).

    Same interface as :class:`~fields3d.fields.RadianceField`: ``density(x)`` ``(N,)`` and
    ``field(x, dirs)`` -> ``(sigma (N,), rgb (N, 3))``, for ``(N, 3)`` float32 world positions and
    unit directions. ``table`` is ``(R^3, 13)`` (or ``(R^3, 4)``: no view term; rows
    ``x + R y + R^2 z``) over the world box ``lo``..``hi``.
    """

    def __init__(self, table: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> None:
        super().__init__()
        resolution = round(table.shape[0] ** (1 / 3))
        self.config = DenseGridConfig(3, resolution, table.shape[1])
        self.register_buffer("table", table.float().contiguous())
        self.register_buffer("lo", lo.float())
        self.register_buffer("hi", hi.float())

    @property
    def resolution(self) -> int:
        return self.config.resolution

    def _lookup(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = (x.float() - self.lo) / (self.hi - self.lo)
        inside = ((u >= 0) & (u <= 1)).all(dim=1)
        values = dense_grid_encode(u.clamp(0, 1).contiguous(), self.table, self.config)
        return values, inside

    def density(self, x: torch.Tensor) -> torch.Tensor:
        values, inside = self._lookup(x)
        return torch.where(inside, values[:, 0].clamp_min(0), 0.0)

    def forward(self, x: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, inside = self._lookup(x)
        sigma = torch.where(inside, values[:, 0].clamp_min(0), 0.0)
        if values.shape[1] == DIFFUSE_CHANNELS:
            return sigma, values[:, 1:4].clamp(0, 1)
        slope = values[:, 4:].view(-1, 3, 3)
        rgb = values[:, 1:4] + (slope * dirs.float()[:, None, :]).sum(2)
        return sigma, rgb.clamp_(0, 1)


@torch.no_grad()
def bake_radiance(field, grid, factor: int = 2, view_dependent: bool = True) -> BakedRadiance:
    """Bake ``field`` over the finest level of its occupancy ``grid`` (module docstring).

    Args:
        field: a radiance field (``density(x)`` and ``field(x, dirs)``, e.g.
            :class:`~fields3d.fields.RadianceField`), evaluated without gradients.
        grid: its :class:`~fields3d.render.OccupancyGrid`; the table has
            ``factor * grid.resolution + 1`` vertices per axis (at most 257: ``factor`` is lowered
            to fit).
        factor: table cells per occupancy cell along each axis (>= 1).
        view_dependent: keep the linear view term (13 values a vertex), or only the colour
            averaged over the six directions (4).

    Returns:
        :class:`BakedRadiance` on the field's device.

    Example:
        >>> import torch
        >>> from fields3d.fields import RadianceField
        >>> from fields3d.fields.baked import bake_radiance
        >>> from fields3d.render import OccupancyGrid
        >>> _ = torch.manual_seed(0)
        >>> field = RadianceField([[-1, -1, -1], [1, 1, 1]], n_levels=2, log2_hashmap_size=10,
        ...                       base_resolution=4, max_resolution=8, n_hidden=16)
        >>> baked = bake_radiance(field, OccupancyGrid(field.aabb, 8), factor=2)
        >>> baked.resolution, tuple(baked.table.shape)  # 2 * 8 + 1 vertices per axis
        (17, (4913, 13))
        >>> x = torch.zeros(1, 3)  # the centre is a vertex: the field's own density there
        >>> torch.allclose(baked.density(x), field.density(x), rtol=1e-4)
        True
    """
    check_int("factor", factor, 1)
    r = grid.resolution
    factor = max(1, min(factor, (MAX_VERTICES_PER_AXIS - 1) // r))
    n = factor * r + 1
    device = grid.occupied.device
    needed = _needed_vertices(grid.occupied[0], factor)  # (n, n, n) [x, y, z]
    index = needed.nonzero()  # (M, 3): x, y, z vertex indices
    lo = torch.tensor(grid.center, device=device) - torch.tensor(grid.half, device=device)
    hi = torch.tensor(grid.center, device=device) + torch.tensor(grid.half, device=device)
    channels = CHANNELS if view_dependent else DIFFUSE_CHANNELS
    table = torch.zeros(n, n, n, channels, device=device)  # [z, y, x]
    for part in index.split(CHUNK):
        x = lo + part.float() / (n - 1) * (hi - lo)
        table[part[:, 2], part[:, 1], part[:, 0]] = _vertex_values(field, x)[:, :channels]
    return BakedRadiance(table.view(n**3, channels), lo, hi)


def _needed_vertices(occupied: torch.Tensor, factor: int) -> torch.Tensor:
    """(n, n, n) bool: the corners of table cells inside occupied occupancy cells."""
    cells = occupied.repeat_interleave(factor, 0)
    cells = cells.repeat_interleave(factor, 1).repeat_interleave(factor, 2).float()
    padded = nn.functional.pad(cells[None, None], (1, 1, 1, 1, 1, 1))
    return nn.functional.max_pool3d(padded, 2, stride=1)[0, 0] > 0


def _vertex_values(field, x: torch.Tensor) -> torch.Tensor:
    """(M, 13): density, mean colour and the linear view term at points ``x`` (M, 3)."""
    axes = torch.eye(3, device=x.device, dtype=x.dtype)
    colors = []
    for d in torch.cat([axes, -axes]):
        sigma, rgb = field(x, d.expand_as(x))
        colors.append(rgb.float())
    plus, minus = torch.stack(colors[:3], 2), torch.stack(colors[3:], 2)  # (M, 3 rgb, 3 axes)
    mean = (plus + minus).sum(2) / 6
    slope = (plus - minus) / 2
    return torch.cat([sigma.float()[:, None], mean, slope.reshape(-1, 9)], 1)
