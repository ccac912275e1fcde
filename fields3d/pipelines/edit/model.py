"""An edited object, rendered like the other models: :class:`EditModel` (``kind == "edit"``).

:func:`fields3d.pipelines.models.load_model` opens the checkpoint ``fields3d edit`` writes as one
(``fields3d render``, ``fields3d view``): the merged voxel field, an occupancy grid made from its
densities, the marching step, the background and the cameras the source was seen from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..._checks import check_int, rgb_triple
from ...guidance import SphericalCameras
from ...render.cameras import Cameras, image_rays, ring_cameras
from ...render.composite import DEFAULT_T_MIN, render_samples
from ...render.march import GridSpec, march_rays
from ...render.occupancy import OccupancyGrid, pack_bits
from ...render.volume import RenderSettings, prune_samples, render_camera
from .grid import VoxelField

KIND = "edit"
ORBIT_SIZE = 256  # pixels of an orbit's pictures unless a width is given
ORBIT_ELEVATION = 15.0
OCCUPIED = 0.01  # a cell is marched when its largest density times the step exceeds this


@dataclass
class EditModel:
    """A voxel field with its occupancy grid, render settings, background and cameras."""

    field: VoxelField
    grid: OccupancyGrid
    settings: RenderSettings
    background: torch.Tensor  # (3,) on the model's device
    step: int  # edit steps behind the field
    camera_distance: float
    fov: float  # degrees
    up: str
    kind: str = KIND

    @property
    def device(self) -> torch.device:
        return self.background.device

    @property
    def center(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.field.center.cpu())

    @property
    def background_color(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.background.cpu())

    def orbit(self, frames: int, width: int | None = None) -> Cameras:
        """``frames`` square views circling the object (``width`` pixels, default 256) at the
        source's camera distance, 15 degrees up."""
        check_int("frames", frames, 1)
        return ring_cameras(
            list(self.center),
            self.camera_distance,
            frames,
            width or ORBIT_SIZE,
            self.fov,
            ORBIT_ELEVATION,
            self.up,
        ).to(self.device)

    @torch.no_grad()
    def render(
        self, cameras: Cameras, index: int = 0, *, background=None, chunk: int = 1 << 13
    ) -> dict[str, torch.Tensor]:
        """Camera ``index``'s picture: ``color`` (H, W, 3), ``depth`` and ``opacity`` (H, W)
        over ``background`` (default the model's)."""
        if isinstance(cameras, Cameras):
            cameras = cameras.to(self.device)
        if background is None:
            bg = self.background
        elif isinstance(background, torch.Tensor):
            bg = background.to(self.device).float()
        else:
            bg = torch.tensor(rgb_triple("background", background), device=self.device)
        return render_camera(self.field, self.grid.spec(), cameras, index, self.settings, bg, chunk)


@torch.no_grad()
def occupancy_of(field: VoxelField, step: float) -> OccupancyGrid:
    """An occupancy grid of ``R - 1`` cells per axis, one per voxel cell: a cell is occupied when
    the largest density at its 8 vertices (the largest anywhere in it: trilinear, then a monotone
    activation) times ``step`` exceeds :data:`OCCUPIED`. Exact, never misses a thin part."""
    r = field.resolution - 1
    grid = OccupancyGrid(field.aabb.tolist(), resolution=r).to(field.lo.device)
    peak = F.max_pool3d(field.density_grid()[None, None], kernel_size=2, stride=1)[0, 0]
    grid.values[0] = peak * step
    grid.occupied.copy_(grid.values > OCCUPIED)
    grid.bits.copy_(pack_bits(grid.occupied))
    return grid


def render_views(
    field: VoxelField,
    cameras: Cameras,
    background: torch.Tensor,  # (3,)
    step: float,
    spec: GridSpec | None = None,
) -> dict[str, torch.Tensor]:
    """``color`` ``(B, 3, H, W)`` and ``opacity`` ``(B, 1, H, W)`` of ``field`` seen from
    ``cameras`` over ``background``, differentiable with respect to the field's tables.
    ``spec``: the grid to march (default the whole box: an edit may put matter anywhere)."""
    spec = spec or GridSpec.from_aabb(field.aabb.tolist())
    colors, opacities = [], []
    h, w = cameras.height, cameras.width
    for b in range(len(cameras)):
        origins, dirs = image_rays(cameras, b)
        samples = march_rays(origins, dirs, spec, step=step)
        samples = prune_samples(field, samples, origins, dirs, DEFAULT_T_MIN)
        x = samples.midpoints(origins, dirs)
        sigma, rgb = field(x)
        bg = background.to(origins.dtype)
        out = render_samples(samples, sigma.to(origins.dtype), rgb.to(origins.dtype), background=bg)
        colors.append(out["color"].view(h, w, 3).permute(2, 0, 1))
        opacities.append(out["opacity"].view(1, h, w))
    return {"color": torch.stack(colors).float(), "opacity": torch.stack(opacities).float()}


def ring_views(
    center, distance: float, fov: float, up: str, n: int, elevation: float = ORBIT_ELEVATION
) -> SphericalCameras:
    """``n`` views evenly around ``center`` at ``distance``, ``elevation`` degrees up."""
    az = torch.arange(n, dtype=torch.float32) * (360.0 / n)
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    return SphericalCameras(az, full(elevation), full(distance), full(fov), tuple(center), up)


def pick(cameras: Cameras, index: int) -> Cameras:
    """Camera ``index`` of ``cameras`` alone."""
    k = slice(index, index + 1)
    c = cameras
    return Cameras(c.c2w[k], c.fx[k], c.fy[k], c.cx[k], c.cy[k], c.width, c.height)
