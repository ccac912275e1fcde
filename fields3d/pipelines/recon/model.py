"""A reconstructed surface's field loaded from its checkpoint, to render from any camera: ``load_sdf``.

``fields3d recon`` (GridPull, neural SDF) leaves ``OUT.field.safetensors``: the signed distance
in the unit cube and the normalization back to the input's coordinates. :class:`SdfModel` puts
the field in those world coordinates (distances in world units) and sphere-traces it, so a viewer
renders it from the user's camera as it renders a NeRF (:class:`~fields3d.pipelines.nerf.NerfModel`).

    model = load_sdf("out/bunny.field.safetensors")
    picture = model.render(model.orbit(8), 0)["color"]   # (H, W, 3), shaded, white background
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass

import torch

from ..._checks import check_int
from ...geometry.pointcloud import Normalization
from ...render.cameras import Cameras, ring_cameras
from ...render.sphere_trace import render_sdf
from .._common import resolve_device
from .checkpoint import load_field

# Orbits frame a ball of this radius (unit-cube units) around the centre: the object's longest
# half side is 0.9 there (Normalization.fit), so the ball holds most objects whole.
VIEW_RADIUS = 1.1


@dataclass
class SdfModel:
    """A signed distance field with its normalization to world coordinates.

    ``field`` maps ``(N, 3)`` float32 unit-cube points to ``(N,)`` distances (negative inside);
    ``norm`` maps the unit cube to world coordinates; ``kind`` names the field. :func:`load_sdf`
    builds one from ``fields3d recon``'s checkpoint; :meth:`sdf` evaluates it in world units,
    :meth:`orbit` and :meth:`render` picture it.

    Example:
        >>> import torch
        >>> from fields3d.fields import BandSDFGrid
        >>> from fields3d.geometry import Normalization
        >>> from fields3d.pipelines.recon import SdfModel
        >>> axis = torch.linspace(-1, 1, 33)
        >>> x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
        >>> ball = (x**2 + y**2 + z**2).sqrt() - 0.5  # (33, 33, 33): a sphere in the unit cube
        >>> norm = Normalization(center=(10.0, 0.0, 0.0), scale=2.0)  # world = 2 unit + (10, 0, 0)
        >>> model = SdfModel(BandSDFGrid.from_coarse(ball, ball.abs() < 0.2), norm, "band_sdf_grid")
        >>> model.sdf(torch.tensor([[10.0, 0.0, 0.0], [12.0, 0.0, 0.0]])).tolist()  # radius 1
        [-1.0, 1.0]
        >>> model.aabb().tolist()  # (2, 3): the unit cube in world coordinates
        [[8.0, -2.0, -2.0], [12.0, 2.0, 2.0]]
        >>> out = model.render(model.orbit(4, width=32), 0)
        >>> {k: tuple(v.shape) for k, v in out.items()}
        {'color': (32, 32, 3), 'depth': (32, 32), 'opacity': (32, 32), 'normals': (32, 32, 3)}
        >>> round(out["depth"][16, 16].item(), 1)  # the camera is 2.2 / sin(20 deg) = 6.4 away
        5.4
    """

    field: torch.nn.Module  # f(unit-cube points (N, 3) float32) -> (N,), negative inside
    norm: Normalization
    kind: str  # "band_sdf_grid" or "neural_sdf"

    @property
    def device(self) -> torch.device:
        return next(itertools.chain(self.field.buffers(), self.field.parameters())).device

    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        """Signed distance at ``(N, 3)`` world points, in world units (the scale is uniform)."""
        return self.field(self.norm.to_unit(x).float()) * self.norm.scale

    def aabb(self) -> torch.Tensor:
        """``(2, 3)`` the field's box in world coordinates (the unit cube's image)."""
        c = torch.as_tensor(self.norm.center, dtype=torch.float32)
        return torch.stack([c - self.norm.scale, c + self.norm.scale])

    def orbit(self, frames: int, width: int | None = None) -> Cameras:
        """``frames`` views on a ring around the object (+y up, 20 degrees above it), square
        pictures ``width`` pixels across (default 400). The cameras are float64: a scan far from
        the origin (UTM metres) keeps its views' positions to the millimetre.

        Returns :class:`~fields3d.render.cameras.Cameras` of ``frames`` views (``c2w``
        ``(frames, 4, 4)`` float64) looking at the field's centre, 40 degrees field of view, from
        ``1.1 * scale / sin(20 deg)`` away: the ball of radius 1.1 (unit cube units) fills the view.
        Example in :class:`SdfModel`.
        """
        size = 400 if width is None else width
        check_int("width", size, 1)
        distance = (
            VIEW_RADIUS * self.norm.scale / math.sin(math.radians(20.0))
        )  # fov 40: the ball fills it
        ring = ring_cameras((0.0, 0.0, 0.0), distance, frames, size=size, fov_deg=40.0)
        return _shifted(ring, torch.as_tensor(self.norm.center, dtype=torch.float64))

    @torch.no_grad()
    def render(
        self,
        cameras: Cameras,
        index: int = 0,
        *,
        background=(1.0, 1.0, 1.0),
        color=(0.75, 0.78, 0.85),
    ) -> dict[str, torch.Tensor]:
        """Camera ``index``'s picture: ``color`` (H, W, 3) shaded with the mesh pictures' lights
        (``color`` and ``background``: a number, three numbers or a ``(3,)`` tensor in [0, 1]),
        ``depth`` (H, W) distance to the surface (0 where no ray hit), ``opacity`` (1 on the
        surface, 0 elsewhere) and ``normals`` (H, W, 3).

        ``cameras``: :class:`~fields3d.render.cameras.Cameras` (any device and dtype; moved to the
        model's), ``index`` one of them. Every tensor returned is float32 on the model's device,
        sphere-traced without gradients. Example in :class:`SdfModel`.
        """
        # Traced around the field's centre (the cameras moved by -center in float64): in world
        # coordinates float32 rays lose a scan far from the origin (at 5e6 their spacing is 0.5).
        if isinstance(cameras, Cameras):  # anything else: render_sdf says what it needs
            cameras = _shifted(cameras, -torch.as_tensor(self.norm.center, dtype=torch.float64)).to(
                self.device
            )
        scale = self.norm.scale
        box = torch.tensor([[-scale] * 3, [scale] * 3], dtype=torch.float32, device=self.device)
        out = render_sdf(
            self._centred_sdf,
            cameras,
            index,
            aabb=box,
            normals="finite",
            normal_step=1e-3 * scale,
            background=background,
            color=color,
            dtype=torch.float32,
        )
        return {
            "color": out.image,
            "depth": out.depth,
            "opacity": out.mask.float(),
            "normals": out.normals,
        }

    def _centred_sdf(self, x: torch.Tensor) -> torch.Tensor:
        """Signed distance at ``(N, 3)`` points relative to the field's centre, in world units."""
        return self.field((x / self.norm.scale).float()) * self.norm.scale


def _shifted(cameras: Cameras, by: torch.Tensor) -> Cameras:
    """``cameras`` in float64, their positions moved by ``by`` ``(3,)``."""
    c2w = cameras.c2w.double().clone()
    c2w[:, :3, 3] += by.to(c2w.device)
    t = {k: getattr(cameras, k).double() for k in ("fx", "fy", "cx", "cy")}
    return Cameras(c2w, **t, width=cameras.width, height=cameras.height)


def load_sdf(path: str | os.PathLike, device: str = "auto") -> SdfModel:
    """The field in a checkpoint written by ``fields3d recon`` (``OUT.field.safetensors``), on ``device``.

    Args:
        path: the checkpoint. device: ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns:
        An :class:`SdfModel` in evaluation mode, its parameters frozen.

    Raises:
        ModelNotFound: no file at ``path``. CheckpointError: not a field checkpoint, or a corrupt
            or incomplete one. BackendUnavailable: ``device="cuda"`` without CUDA.

    Example:
        >>> import pathlib, tempfile, torch
        >>> from fields3d.fields import BandSDFGrid
        >>> from fields3d.geometry import Normalization
        >>> from fields3d.pipelines.recon import ReconConfig, load_sdf
        >>> from fields3d.pipelines.recon.checkpoint import save_field
        >>> axis = torch.linspace(-1, 1, 33)
        >>> x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
        >>> ball = (x**2 + y**2 + z**2).sqrt() - 0.5  # (33, 33, 33): a sphere in the unit cube
        >>> field = BandSDFGrid.from_coarse(ball, ball.abs() < 0.2)
        >>> with tempfile.TemporaryDirectory() as tmp:  # the file fields3d recon would leave
        ...     path = pathlib.Path(tmp) / "ball.field.safetensors"
        ...     _ = save_field(path, field, Normalization((0, 0, 0), 4.0), ReconConfig("ball.xyz"))
        ...     model = load_sdf(path, device="cpu")
        >>> model.kind, model.device, model.sdf(torch.zeros(1, 3)).tolist()  # radius 2 in the world
        ('band_sdf_grid', device(type='cpu'), [-2.0])
        >>> model.render(model.orbit(1, width=24))["color"].shape
        torch.Size([24, 24, 3])
    """
    field, norm, meta = load_field(path, resolve_device(device))
    field.requires_grad_(False)
    field.eval()
    return SdfModel(field, norm, meta["kind"])
