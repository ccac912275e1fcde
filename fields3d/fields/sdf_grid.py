"""A signed distance field stored on a grid, learnable in a band around the surface: ``BandSDFGrid``.

The grid has ``R`` points per axis spanning ``[-1, 1]^3`` (spacing ``2 / (R - 1)``); values
between grid points are trilinear. Only the grid points in ``band`` are parameters: the rest
keep their initial value (the far field only has to carry the sign), so a 256^3 grid optimises a
few hundred thousand numbers instead of 16.7 million. :meth:`value_and_grad` returns the value
and its analytic spatial gradient, both differentiable with respect to the parameters (the
pulling loss of GridPull moves queries along that gradient).
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from .._checks import MAX_GRID, check_int, check_points, dtype_str
from ..errors import InputError

_CORNERS = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
# ``cells`` packs each grid point's fixed value (float32 bits) and band slot (int32, -1 outside
# the band) into one int64, so a lookup reads one word a grid point instead of two; viewed as
# int32 pairs, the value is the pair's low word
_VALUE = 0 if sys.byteorder == "little" else 1


class BandSDFGrid(nn.Module):
    """SDF on an ``R^3`` grid over ``[-1, 1]^3`` whose values in ``band`` are learnable.

    Args:
        initial: ``(R, R, R)`` finite real values, stored as float32 (``initial[i, j, k]`` at
            ``-1 + (i, j, k) * spacing``).
        band: ``(R, R, R)`` bool on ``initial``'s device, the grid points to optimise (at least one).

    Points given to :meth:`forward` and :meth:`value_and_grad` are ``(N, 3)`` in the values' dtype
    (float32 unless converted with ``.double()``) on their device; a point with a NaN coordinate
    gets a NaN value, as a hash grid gives it (and no grid index out of bounds).

    Example:
        >>> import torch
        >>> from fields3d.fields import BandSDFGrid
        >>> axis = torch.linspace(-1, 1, 9)  # R = 9: spacing 0.25
        >>> x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
        >>> initial = (x**2 + y**2 + z**2).sqrt() - 0.5  # (R, R, R): a sphere's distance
        >>> grid = BandSDFGrid(initial, initial.abs() < 0.3)  # band: (R, R, R) bool
        >>> grid.values.shape  # the learnable grid points
        torch.Size([146])
        >>> grid(torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])).tolist()  # (N, 3) -> (N,)
        [0.0, -0.5]
        >>> value, grad = grid.value_and_grad(torch.tensor([[0.625, 0.0, 0.0]]))
        >>> value.tolist(), grad.shape, grad[0, 0].item()  # between 0.5 (0.0) and 0.75 (0.25)
        ([0.125], torch.Size([1, 3]), 1.0)
    """

    def __init__(self, initial: torch.Tensor, band: torch.Tensor):
        super().__init__()
        _check_tensor("initial", initial)
        _check_tensor("band", band)
        res = initial.shape[0] if initial.dim() else 0
        if initial.shape != (res, res, res) or band.shape != initial.shape or res < 2:
            raise InputError(
                f"initial and band must both be (R, R, R) with R >= 2, got {tuple(initial.shape)} "
                f"and {tuple(band.shape)}"
            )
        _check_values("initial", initial)
        _check_band(initial, band)
        flat = initial.reshape(-1).to(torch.float32)
        index = band.reshape(-1).nonzero().squeeze(1)
        slot = torch.full((flat.numel(),), -1, dtype=torch.int32, device=flat.device)
        slot[index] = torch.arange(index.numel(), dtype=torch.int32, device=flat.device)
        words = (flat.view(torch.int32), slot)
        cells = torch.stack(words if _VALUE == 0 else words[::-1], dim=1).view(torch.int64)
        self.resolution = res
        self.register_buffer("base", flat.clone())
        self.register_buffer("band_index", index)
        self.register_buffer("cells", cells.view(-1))
        self.values = nn.Parameter(flat[index].clone())

    @classmethod
    def from_coarse(cls, coarse: torch.Tensor, band: torch.Tensor) -> BandSDFGrid:
        """The grid whose fixed values are ``coarse`` ``(C, C, C)`` upsampled trilinearly to the
        resolution of ``band`` ``(R, R, R)`` (grid points at the same ``[-1, 1]`` span)."""
        _check_tensor("coarse", coarse)
        _check_tensor("band", band)
        c = coarse.shape[0] if coarse.dim() == 3 else 0
        res = band.shape[0] if band.dim() == 3 else 0
        if coarse.shape != (c, c, c) or c < 2 or band.shape != (res, res, res) or res < 2:
            raise InputError(
                f"coarse and band must be (C, C, C) and (R, R, R) with C, R >= 2, got "
                f"{tuple(coarse.shape)} and {tuple(band.shape)}"
            )
        _check_values("coarse", coarse)
        up = coarse.to(torch.float32)[None, None]
        if coarse.shape[0] != res:
            up = torch.nn.functional.interpolate(
                up, size=(res,) * 3, mode="trilinear", align_corners=True
            )
        grid = cls(up[0, 0].contiguous(), band)
        grid.register_buffer("coarse", coarse.to(torch.float32).clone())
        return grid

    @classmethod
    def from_parts(
        cls, coarse: torch.Tensor, band_index: torch.Tensor, values: torch.Tensor, resolution: int
    ) -> BandSDFGrid:
        """Rebuild from the buffers a checkpoint stores (see :meth:`from_coarse`); ``resolution``
        from 2 to ``MAX_GRID`` (2048)."""
        for name, t in (("coarse", coarse), ("band_index", band_index), ("values", values)):
            _check_tensor(name, t)
        c = coarse.shape[0] if coarse.dim() == 3 else 0
        if (
            coarse.shape != (c, c, c)
            or c < 2
            or band_index.shape != values.shape
            or values.dim() != 1
        ):
            raise InputError(
                f"coarse must be (C, C, C) with C >= 2 and band_index hold one index per value, got "
                f"{tuple(coarse.shape)}, {tuple(band_index.shape)} and {tuple(values.shape)}"
            )
        if (
            band_index.is_floating_point()
            or band_index.is_complex()
            or band_index.dtype == torch.bool
        ):
            raise InputError(
                f"band_index must hold integer lattice indices, got {dtype_str(band_index.dtype)}"
            )
        if not values.is_floating_point():
            raise InputError(f"values must be a float tensor, got {dtype_str(values.dtype)}")
        check_int("resolution", resolution, 2)
        check_int("resolution", resolution, 2, MAX_GRID)
        index = band_index.long()
        if index.numel() == 0 or int(index.min()) < 0 or int(index.max()) >= resolution**3:
            raise InputError(
                f"band_index must hold at least one lattice index in [0, {resolution}^3)"
            )
        band = torch.zeros(resolution**3, dtype=torch.bool)
        band[index] = True
        grid = cls.from_coarse(coarse, band.reshape((resolution,) * 3))
        if not torch.equal(grid.band_index, band_index.long()):
            raise InputError("band_index must be sorted and free of repeats")
        with torch.no_grad():
            grid.values.copy_(values)
        return grid

    @property
    def spacing(self) -> float:
        return 2.0 / (self.resolution - 1)

    def dense(self) -> torch.Tensor:
        """``(R, R, R)`` current values (a copy, no gradient)."""
        out = self.base.clone()
        out[self.band_index] = self.values.detach()
        r = self.resolution
        return out.reshape(r, r, r)

    def lookup(self, flat: torch.Tensor) -> torch.Tensor:
        """Values at flat grid indices (any shape), differentiable for band points."""
        # index_select, not x[flat]: the same gather, a tenth of the time on the CPU (GridPull's
        # steps were half gathers)
        words = self.cells.index_select(0, flat.reshape(-1)).view(torch.int32).view(-1, 2)
        slot = words[:, 1 - _VALUE].long()
        values = self.values.index_select(0, slot.clamp(min=0))
        fixed = words[:, _VALUE].view(torch.float32)
        return torch.where(slot >= 0, values, fixed).view(flat.shape)

    def _cells(self, x: torch.Tensor):
        check_points(
            "x",
            x,
            f"{dtype_str(self.base.dtype)} of shape (N, 3)",
            dtype=self.base.dtype,
            device=self.base.device,
            owner="grid's values",
        )
        r = self.resolution
        u = (x.clamp(-1.0, 1.0) + 1.0) * (0.5 * (r - 1))
        cell = (
            u.nan_to_num(0.0).floor().clamp(0, r - 2)
        )  # NaN: a valid cell, and t = u - cell keeps the NaN
        t = u - cell
        corner = cell.long().unsqueeze(1) + _CORNERS.to(x.device)  # (N, 8, 3)
        flat = (corner[..., 0] * r + corner[..., 1]) * r + corner[..., 2]
        return t, self.lookup(flat).view(-1, 2, 2, 2)

    # The trilinear sums are written out axis by axis (z, then y, then x): as one einsum each they
    # ran as batched matrix products of 2 x 2 blocks, a quarter of a GridPull step on the CPU.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3)`` float32 points in ``[-1, 1]^3`` (clamped) -> ``(N,)`` values."""
        t, v = self._cells(x)
        tx, ty, tz = (t[:, a, None] for a in range(3))
        vz = v[..., 0] + tz[..., None] * (v[..., 1] - v[..., 0])  # (N, 2, 2): at z, by (x, y)
        vy = vz[..., 0] + ty * (vz[..., 1] - vz[..., 0])  # (N, 2): at (y, z), by x
        return (vy[:, 0] + tx[:, 0] * (vy[:, 1] - vy[:, 0])).view(-1)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Values ``(N,)`` and spatial gradients ``(N, 3)`` at ``(N, 3)`` points."""
        t, v = self._cells(x)
        tx, ty, tz = (t[:, a, None] for a in range(3))
        dz = v[..., 1] - v[..., 0]  # (N, 2, 2): z-differences by (x, y)
        vz = v[..., 0] + tz[..., None] * dz
        dy = vz[..., 1] - vz[..., 0]  # (N, 2): y-differences at z, by x
        vy = vz[..., 0] + ty * dy
        dzy = dz[..., 0] + ty * (dz[..., 1] - dz[..., 0])  # (N, 2): z-differences at y, by x
        ddx = torch.stack((vy[:, 1] - vy[:, 0], dy[:, 1] - dy[:, 0], dzy[:, 1] - dzy[:, 0]), 1)
        # value, then the y- and z-differences, interpolated along x; the x-difference as it is
        along_x = torch.stack((vy[:, 0], dy[:, 0], dzy[:, 0]), 1) + tx * ddx
        value = along_x[:, 0]
        grad = torch.cat((ddx[:, :1], along_x[:, 1:]), 1)
        return value, grad * (0.5 * (self.resolution - 1))

    def laplacian(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Discrete Laplacian (6-neighbour, in grid units) at ``count`` (>= 1) random band points
        (at most one per band point), drawn with ``generator`` (None: torch's global one)."""
        check_int("count", count, 1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise InputError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        r = self.resolution
        n = self.band_index.numel()
        pick = torch.randint(0, n, (min(count, n),), device=self.base.device, generator=generator)
        flat = self.band_index.index_select(0, pick)
        i, j, k = flat // (r * r), (flat // r) % r, flat % r
        interior = (i > 0) & (i < r - 1) & (j > 0) & (j < r - 1) & (k > 0) & (k < r - 1)
        flat = flat.masked_select(interior)
        # one gather for the point (its own value) and its six neighbours: (7, n)
        offsets = torch.tensor([0, r * r, -r * r, r, -r, 1, -1], device=flat.device)
        around = self.lookup(flat + offsets[:, None])
        total = -6.0 * around[0]
        for side in around[1:]:
            total = total + side
        return total


def _check_tensor(name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        hint = "; convert it with torch.from_numpy" if type(t).__name__ == "ndarray" else ""
        raise InputError(f"{name} must be a torch.Tensor, got {type(t).__name__}{hint}")


def _check_values(name: str, t: torch.Tensor) -> None:
    """Real (float or integer) and finite: NaN grid values would make a NaN field and mesh."""
    if t.is_complex() or t.dtype == torch.bool:
        raise InputError(
            f"{name} must hold real values (float or integer), got {dtype_str(t.dtype)}"
        )
    bad = int((~torch.isfinite(t)).sum()) if t.is_floating_point() else 0
    if bad:
        raise InputError(
            f"{name} must be finite, got NaN or infinite values at {bad} lattice points; "
            "replace them (torch.nan_to_num) before building the grid"
        )


def _check_band(initial: torch.Tensor, band: torch.Tensor) -> None:
    """``band`` bool, on ``initial``'s device, marking at least one point."""
    if band.dtype != torch.bool:
        raise InputError(
            f"band must be a bool tensor (the lattice points to optimise), got {dtype_str(band.dtype)}; "
            "build it with a comparison such as values.abs() < width"
        )
    if band.device != initial.device:
        raise InputError(
            f"band must be on {initial.device} like initial, got {band.device}; move it with .to(device)"
        )
    if not bool(band.any()):
        raise InputError("band must mark at least one lattice point to optimise, got none")
