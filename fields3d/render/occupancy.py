"""A cascaded occupancy grid (instant-NGP style) for skipping empty space while marching.

Level ``l`` covers ``center +- half * 2**l`` with ``resolution**3`` cells; points belong to the
finest level that holds them, so the cells of a coarse level inside the next finer box are never
used and never updated. Each cell keeps an exponential moving average of an occupancy value
(e.g. density x step size for a NeRF, or ``|sdf|`` turned into a band test for an SDF); a cell is
occupied when its value exceeds ``min(threshold, mean of all values)``. The packed bits go to
:func:`fields3d.render.march_rays` through :meth:`OccupancyGrid.spec`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .._checks import MAX_GRID, check_int
from ..errors import InputError
from .march import MAX_LEVELS, GridSpec

CHUNK = 1 << 18  # points per field query during updates (levels: at most the marcher's MAX_LEVELS;
# instant-NGP uses up to 8 cascades)
#: The most cells of a grid, all levels together (512^3 twice; instant-NGP's 128^3 x 8 is 2^24): a grid
#: keeps ~8 bytes a cell and a warm-up update needs ~50 (2^28 cells: 2 GB resident, 14 GB at peak).
MAX_CELLS = 1 << 28


def pack_bits(occupied: torch.Tensor) -> torch.Tensor:
    """Pack a bool tensor (flattened) into uint8: element ``b`` is bit ``b & 7`` of byte ``b >> 3``.

    Args:
        occupied: bool tensor of any shape (N elements in row-major order), any device.

    Returns:
        ``(ceil(N / 8),)`` uint8 on the same device, the last byte padded with zero bits.

    Example:
        >>> import torch
        >>> from fields3d.render import pack_bits
        >>> pack_bits(torch.tensor([True, False, True, True, False, False, False, False, True])).tolist()
        [13, 1]
    """
    flat = occupied.reshape(-1).to(torch.uint8)
    pad = (-flat.shape[0]) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=flat.device)
    return (flat.view(-1, 8) * weights).sum(1, dtype=torch.uint8)


def _check_size(resolution, levels) -> None:
    check_int("resolution", resolution, 2, MAX_GRID)
    check_int("levels", levels, 1, MAX_LEVELS)
    if levels > 1 and resolution % 4:
        raise InputError(
            f"resolution must be a multiple of 4 with more than one level, got {resolution}"
        )
    cells = levels * resolution**3
    if cells > MAX_CELLS:
        raise InputError(
            f"levels * resolution**3 must be at most {MAX_CELLS} cells (a grid keeps ~8 bytes a cell and "
            f"an update needs ~50), got {levels} * {resolution}**3 = {cells}; lower resolution or levels"
        )


def _box(aabb, levels: int) -> GridSpec:
    box = GridSpec.from_aabb(
        aabb
    )  # InputError for anything but finite (2, 3) corners with max > min
    if not math.isfinite(2 * max(box.half) * 2.0 ** (levels - 1)):
        raise InputError(
            f"aabb is too large for {levels} levels: the outermost box, 2**{levels - 1} times its size, "
            f"must be finite, got {aabb!r}; use fewer levels or smaller units"
        )
    return box


class OccupancyGrid(nn.Module):
    """Occupancy of ``levels`` nested boxes of ``resolution**3`` cells around ``aabb``.

    Args:
        aabb: ``(2, 3)`` min and max corners of the finest level (the scene's box).
        resolution: cells per axis and level, 2 to 2048 (a multiple of 4 when levels > 1).
        levels: boxes, each twice the previous, 1 to :data:`MAX_LEVELS`; ``levels * resolution**3``
            at most :data:`MAX_CELLS`.

    Buffers: ``values`` ``(levels, R, R, R)`` float32 (the moving averages), ``occupied`` the same
    shape, bool, and ``bits`` their :func:`pack_bits`, which :meth:`spec` hands to the marcher.

    Example:
        >>> import torch
        >>> from fields3d.render import OccupancyGrid, march_rays
        >>> grid = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=16)
        >>> grid.mark_sdf(lambda x: x.norm(dim=1) - 0.5)  # a sphere of radius 0.5
        >>> grid.occupied.shape, grid.bits.shape, grid.bits.dtype
        (torch.Size([1, 16, 16, 16]), torch.Size([512]), torch.uint8)
        >>> round(grid.occupancy_fraction(), 4)
        0.1914
        >>> origins = torch.tensor([[-2.0, 0.0, 0.0], [-2.0, 0.9, 0.9]])  # the second passes by
        >>> dirs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> samples = march_rays(origins, dirs, grid.spec(), step=0.01)
        >>> samples.counts.tolist()  # steps only in occupied cells
        [100, 0]
    """

    def __init__(self, aabb, resolution: int = 128, levels: int = 1) -> None:
        super().__init__()
        _check_size(resolution, levels)
        box = _box(aabb, levels)
        self.center, self.half = box.center, box.half
        self.resolution, self.levels = resolution, levels
        shape = (levels, resolution, resolution, resolution)
        self.register_buffer("values", torch.zeros(shape))
        self.register_buffer("occupied", torch.ones(shape, dtype=torch.bool))
        self.register_buffer("bits", pack_bits(self.occupied))
        self.register_buffer("live", self._live_cells(), persistent=False)

    def _live_cells(self) -> torch.Tensor:
        """(levels, R, R, R) bool: cells a point can belong to (not inside the next finer box)."""
        r = self.resolution
        live = torch.ones(self.levels, r, r, r, dtype=torch.bool)
        inner = slice(r // 4, 3 * r // 4)
        live[1:, inner, inner, inner] = False
        return live

    def spec(self) -> GridSpec:
        """The grid as the marcher reads it."""
        r = self.resolution
        return GridSpec(self.center, self.half, (r, r, r), self.levels, self.bits)

    def occupied_spec(self) -> GridSpec:
        """The finest level cropped to the box of its occupied cells, as the marcher reads it.

        The same cells (and samples in them, up to where each ray's steps start) as
        :meth:`spec`'s finest level, but rays that miss the occupied part of the scene leave at
        once, and the others stop walking where the occupied cells end: a renderer that needs
        only the finest level (a preview) marches faster. An empty grid gives one empty cell.

        Example:
            >>> import torch
            >>> from fields3d.render import OccupancyGrid, pack_bits
            >>> grid = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=8)
            >>> grid.occupied.zero_()[0, 2:4, 4, 4] = True  # two cells next to each other along x
            >>> _ = grid.bits.copy_(pack_bits(grid.occupied))
            >>> spec = grid.occupied_spec()
            >>> spec.center, spec.half, spec.resolution
            ((-0.25, 0.125, 0.125), (0.25, 0.125, 0.125), (2, 1, 1))
        """
        occupied = self.occupied[0]
        index = occupied.nonzero()
        if index.shape[0] == 0:
            begin = torch.zeros(3, dtype=torch.long, device=occupied.device)
            end = begin + 1
        else:
            begin, end = index.min(0).values, index.max(0).values + 1
        cells = occupied[begin[0] : end[0], begin[1] : end[1], begin[2] : end[2]]
        begin, end = begin.tolist(), end.tolist()
        lo = [c - h for c, h in zip(self.center, self.half)]
        size = [2 * h / self.resolution for h in self.half]
        a = [lo[k] + begin[k] * size[k] for k in range(3)]
        b = [lo[k] + end[k] * size[k] for k in range(3)]
        return GridSpec(
            tuple((a[k] + b[k]) / 2 for k in range(3)),
            tuple((b[k] - a[k]) / 2 for k in range(3)),
            tuple(end[k] - begin[k] for k in range(3)),
            1,
            pack_bits(cells[None]),
        )

    def cell_points(
        self, index: torch.Tensor, jitter: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(N, 3) points in cells given by flat indices (N,): centres, or uniform within the cell."""
        r = self.resolution
        level, rest = index // r**3, index % r**3
        ijk = torch.stack([rest // (r * r), (rest // r) % r, rest % r], 1).to(self.values.dtype)
        u = (
            torch.rand(ijk.shape, generator=generator, device=ijk.device)
            if jitter
            else torch.full_like(ijk, 0.5)
        )
        center = torch.tensor(self.center, dtype=ijk.dtype, device=ijk.device)
        half = (
            torch.tensor(self.half, dtype=ijk.dtype, device=ijk.device)
            * (2.0 ** level.to(ijk.dtype))[:, None]
        )
        return center - half + (ijk + u) / r * 2 * half

    def _candidates(self, warmup: bool, generator: torch.Generator | None) -> torch.Tensor:
        live = self.live.reshape(-1).nonzero().squeeze(1)
        if warmup:
            return live
        n = max(1, live.shape[0] // 4)
        pick = live[torch.randint(live.shape[0], (n,), generator=generator, device=live.device)]
        occ = (self.occupied.reshape(-1) & self.live.reshape(-1)).nonzero().squeeze(1)
        if occ.shape[0] > n:
            occ = occ[torch.randint(occ.shape[0], (n,), generator=generator, device=occ.device)]
        return torch.cat([pick, occ])

    @torch.no_grad()
    def update(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        *,
        warmup: bool = False,
        decay: float = 0.95,
        threshold: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        """Re-evaluate cells with ``fn(points (N, 3)) -> (N,)`` occupancy values and refresh the bits.

        ``warmup`` visits every live cell; otherwise a random quarter of them plus as many
        occupied ones. Each visited cell keeps ``max(decay * old, fn(random point in the cell))``.
        """
        cells = self._candidates(warmup, generator)
        flat = self.values.view(-1)
        for chunk in cells.split(CHUNK):
            points = self.cell_points(chunk, jitter=True, generator=generator)
            new = fn(points).reshape(-1).to(flat.dtype)
            if new.shape[0] != chunk.shape[0]:
                raise InputError(
                    f"the occupancy function must return one value per point ({chunk.shape[0]}), "
                    f"got {new.shape[0]}"
                )
            flat[chunk] = torch.maximum(flat[chunk] * decay, torch.nan_to_num(new, nan=0.0))
        live_values = self.values[self.live]
        cut = min(threshold, float(live_values.clamp(min=0).mean()))
        self.occupied.copy_((self.values > cut) & self.live)
        self.bits.copy_(pack_bits(self.occupied))

    @torch.no_grad()
    def mark_sdf(self, sdf: Callable[[torch.Tensor], torch.Tensor], band: float = 0.0) -> None:
        """Occupy the cells whose centre lies within a cell diagonal (+ band) of an SDF's zero set."""
        cells = self.live.reshape(-1).nonzero().squeeze(1)
        flat = self.values.view(-1)
        r = self.resolution
        for chunk in cells.split(CHUNK):
            points = self.cell_points(chunk, jitter=False)
            level = (chunk // r**3).to(points.dtype)
            reach = (
                torch.tensor(self.half, dtype=points.dtype, device=points.device).norm()
                * 2
                / r
                * 2.0**level
            )
            flat[chunk] = (sdf(points).reshape(-1).abs() <= reach + band).to(flat.dtype)
        self.occupied.copy_((self.values > 0.5) & self.live)
        self.bits.copy_(pack_bits(self.occupied))

    def occupancy_fraction(self) -> float:
        return float(self.occupied.sum()) / max(1, int(self.live.sum()))
