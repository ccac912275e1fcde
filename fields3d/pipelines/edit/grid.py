"""The voxel field text-guided editing optimises: density and colour in dense grids (ReLU-field style).

Vox-E's representation: an explicit grid over the source's box, interpolated trilinearly and
then activated (Karnewar et al.'s ReLU fields put the non-linearity after the interpolation, so a
cell can hold a sharp surface). Two :class:`~fields3d.encodings.DenseGrid` tables of ``R^3``
vertices (the core's trilinear op, with its backward), one density channel and three colour
channels:

    sigma(x) = softplus(d(u)) * DENSITY_SCALE / radius,    rgb(x) = sigmoid(c(u)),

with ``u`` the position in the unit cube of the box, ``d`` and ``c`` the interpolated tables and
``radius`` half the box's largest side (densities per unit of the object's size, as the generated
field's). Softplus rather than ReLU: a ReLU's gradient is zero wherever the density is, so an
edit could never grow matter in empty space (a hat where there was air); softplus keeps a small
gradient there, which Adam's per-parameter scaling turns into real steps.

The colour is radiance as seen (unlit), like a NeRF's: a source NeRF's view-dependent colour is
averaged over a few directions; a generated field's albedo is taken as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..._checks import check_int
from ...encodings import DenseGrid
from ...errors import InputError

DENSITY_SCALE = 50.0  # sigma per object radius = softplus(d) * DENSITY_SCALE
MIN_RAW = -10.0  # the raw density of empty space (softplus(-10) * 50 = 0.002 per radius)
MAX_RESOLUTION = 512


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """``x`` with ``softplus(x) == y`` (``y > 0``), exact for large ``y`` too."""
    return torch.where(y > 20, y, torch.log(torch.expm1(y.clamp_min(1e-12))))


class VoxelField(nn.Module):
    """Density and colour on ``resolution^3`` vertices spanning ``aabb`` (module docstring).

    Args:
        aabb: ``(2, 3)`` min and max corners of the box the grid spans.
        resolution: vertices per axis, 4 to 512.
        device: where the tables live.

    ``density(x)``: ``(N, 3)`` float -> ``(N,)`` float32 densities per world unit;
    ``forward(x, dirs)``: densities and ``(N, 3)`` colours in ``(0, 1)`` (the radiance-field
    interface :func:`fields3d.render.render_rays` reads; ``dirs`` unused).
    ``density_grid()``: the ``(R, R, R)`` densities at the vertices, indexed ``[x, y, z]``.

    Example:
        >>> import torch
        >>> from fields3d.pipelines.edit.grid import VoxelField
        >>> field = VoxelField([[-1, -1, -1], [1, 1, 1]], resolution=8)
        >>> centre = torch.zeros(1, 3)
        >>> field.set_grids(torch.full((8, 8, 8), 50.0), torch.full((8, 8, 8, 3), 0.25))
        >>> with torch.no_grad():
        ...     sigma, rgb = field(centre)  # (N,) and (N, 3)
        >>> round(float(sigma[0]), 3), [round(v, 3) for v in rgb[0].tolist()]
        (50.0, [0.25, 0.25, 0.25])
        >>> field.density_grid().shape  # (R, R, R), [x, y, z]
        torch.Size([8, 8, 8])
    """

    def __init__(self, aabb, resolution: int = 128, *, device=None) -> None:
        super().__init__()
        check_int("resolution", resolution, 4, MAX_RESOLUTION)
        box = torch.as_tensor(aabb, dtype=torch.float64)
        if box.shape != (2, 3) or not bool(torch.isfinite(box).all()):
            raise InputError(f"aabb must be finite (2, 3) min and max corners, got {aabb!r}")
        if not bool((box[1] > box[0]).all()):
            raise InputError(f"aabb's max corner must exceed its min corner, got {box.tolist()}")
        self.resolution = int(resolution)
        self.sigma_grid = DenseGrid(3, resolution, 1, device=device)
        self.color_grid = DenseGrid(3, resolution, 3, device=device)
        self.register_buffer("lo", box[0].float().to(device))
        self.register_buffer("hi", box[1].float().to(device))
        self.radius = float((box[1] - box[0]).max()) / 2
        with torch.no_grad():
            self.sigma_grid.params.fill_(MIN_RAW)

    @property
    def aabb(self) -> torch.Tensor:
        """``(2, 3)`` the box the grid spans."""
        return torch.stack([self.lo, self.hi])

    @property
    def center(self) -> torch.Tensor:
        return (self.lo + self.hi) / 2

    def config(self) -> dict:
        """What :meth:`from_config` rebuilds this field from (weights travel in the state dict)."""
        return {"aabb": self.aabb.tolist(), "resolution": self.resolution}

    @staticmethod
    def from_config(config: dict, device=None) -> VoxelField:
        if not isinstance(config, dict) or set(config) != {"aabb", "resolution"}:
            raise InputError(f"a VoxelField config holds aabb and resolution, got {config!r}")
        return VoxelField(config["aabb"], config["resolution"], device=device)

    def vertices(self) -> torch.Tensor:
        """``(R, R, R, 3)`` world positions of the vertices, indexed ``[x, y, z]``."""
        axes = [
            torch.linspace(float(a), float(b), self.resolution, device=self.lo.device)
            for a, b in zip(self.lo, self.hi)
        ]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() == 2):
            raise InputError(f"x must be a float tensor of shape (N, 3), got {x!r:.80}")
        return ((x.float() - self.lo) / (self.hi - self.lo)).clamp(0, 1).contiguous()

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3)`` positions -> ``(N,)`` densities (>= 0, per world unit)."""
        raw = self.sigma_grid(self._unit(x))[:, 0]
        return F.softplus(raw) * (DENSITY_SCALE / self.radius)

    def forward(self, x: torch.Tensor, dirs: torch.Tensor | None = None):
        """``(N, 3)`` positions -> ``(N,)`` densities and ``(N, 3)`` colours in ``(0, 1)``."""
        u = self._unit(x)
        raw = self.sigma_grid(u)[:, 0]
        sigma = F.softplus(raw) * (DENSITY_SCALE / self.radius)
        return sigma, torch.sigmoid(self.color_grid(u))

    def _table(self, grid: DenseGrid) -> torch.Tensor:
        r = self.resolution
        # the table's rows are [z, y, x] (DenseGrid's layout): permute to [x, y, z]
        return grid.params.view(r, r, r, -1).permute(2, 1, 0, 3)

    def density_grid(self) -> torch.Tensor:
        """``(R, R, R)`` densities per world unit at the vertices, ``[x, y, z]``, differentiable."""
        raw = self._table(self.sigma_grid)[..., 0]
        return F.softplus(raw) * (DENSITY_SCALE / self.radius)

    def color_table(self) -> torch.Tensor:
        """``(R, R, R, 3)`` colours in ``(0, 1)`` at the vertices, ``[x, y, z]``."""
        return torch.sigmoid(self._table(self.color_grid))

    @torch.no_grad()
    def set_grids(self, sigma: torch.Tensor, color: torch.Tensor) -> None:
        """Set the vertices to densities ``sigma`` ``(R, R, R)`` (per world unit, >= 0) and colours
        ``color`` ``(R, R, R, 3)`` in ``[0, 1]``, both indexed ``[x, y, z]``."""
        r = self.resolution
        if tuple(sigma.shape) != (r, r, r) or tuple(color.shape) != (r, r, r, 3):
            raise InputError(
                f"set_grids takes ({r}, {r}, {r}) densities and ({r}, {r}, {r}, 3) colours, got "
                f"{tuple(sigma.shape)} and {tuple(color.shape)}"
            )
        raw = inverse_softplus(sigma.float() * (self.radius / DENSITY_SCALE)).clamp_min(MIN_RAW)
        logits = torch.logit(color.float().clamp(1e-3, 1 - 1e-3))
        self._table(self.sigma_grid)[..., 0] = raw.to(self.lo.device)
        self._table(self.color_grid)[...] = logits.to(self.lo.device)

    @torch.no_grad()
    def merged(self, other: VoxelField, mask: torch.Tensor) -> VoxelField:
        """A new field: ``other``'s vertices where ``mask`` ``(R, R, R)`` (``[x, y, z]``) is
        True, this field's elsewhere."""
        out = VoxelField(self.aabb.tolist(), self.resolution, device=self.lo.device)
        m = mask.to(self.lo.device)[..., None]
        for name in ("sigma_grid", "color_grid"):
            mine, theirs = self._table(getattr(self, name)), other._table(getattr(other, name))
            out._table(getattr(out, name))[...] = torch.where(m, theirs, mine)
        return out


def cell_size(field: VoxelField) -> float:
    """The distance between neighbouring vertices along the box's longest side."""
    return 2 * field.radius / (field.resolution - 1)
