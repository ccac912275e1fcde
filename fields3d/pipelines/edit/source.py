"""The radiance field an edit starts from: ``open_source(path)``.

A checkpoint ``fields3d nerf``, ``fields3d generate`` or ``fields3d edit`` wrote. Beside the
model (:func:`fields3d.pipelines.models.load_model`) the edit needs where the object is and how
it was seen: the box its field spans, the centre, up axis and camera distance and field of view
its pictures were taken from, and the background colour behind it. A reconstructed surface's
field (``fields3d recon``) holds no colour and is refused with a message that says so.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ...checkpoint import read_meta
from ...errors import CheckpointError, InputError, ModelNotFound

KINDS = ("nerf", "generate", "edit")
WRITERS = "`fields3d nerf`, `fields3d generate` or `fields3d edit`"
SURFACES = ("band_sdf_grid", "neural_sdf")
NERF_DIRECTIONS = 6  # view directions a NeRF's colour is averaged over (the axes, both ways)


@dataclass
class Source:
    """A loaded source model and its scene.

    Attributes:
        model: the model (``NerfModel``, ``GenerativeModel`` or ``EditModel``).
        kind: ``"nerf"``, ``"generate"`` or ``"edit"``.
        box: ``(2, 3)`` float64 list, the box the field spans.
        center: the point the cameras look at. up: ``"y"`` or ``"z"``.
        distance: the cameras' distance from ``center``. fov: their field of view, degrees.
        background: ``(3,)`` the colour behind the object.
    """

    model: object
    kind: str
    path: Path
    box: list
    center: tuple[float, float, float]
    up: str
    distance: float
    fov: float
    background: tuple[float, float, float]

    @property
    def radius(self) -> float:
        """Half the box's diagonal: the object's bounding sphere."""
        lo, hi = torch.tensor(self.box[0]), torch.tensor(self.box[1])
        return float((hi - lo).norm()) / 2

    @torch.no_grad()
    def sample(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Densities ``(N,)`` and colours ``(N, 3)`` of the source's field at ``x`` ``(N, 3)``
        (a NeRF's colour averaged over :data:`NERF_DIRECTIONS` directions)."""
        field = self.model.field
        x = x.to(self.model.device).float()
        if self.kind == "nerf":
            sigma = field.density(x)
            color = torch.zeros(x.shape[0], 3, device=x.device)
            for d in _axis_directions(x.device):
                color += field(x, d.expand_as(x).contiguous())[1].float()
            color = color / NERF_DIRECTIONS
        else:
            sigma, color = field(x) if self.kind == "generate" else field(x, None)
        # what the model's occupancy grid skips is empty in its renders: keep it so
        return sigma.float() * occupied(self.model.grid, x), color.float()[:, :3]

    @torch.no_grad()
    def render(self, cameras, index: int) -> dict:
        """The source model's picture from camera ``index`` over :attr:`background`."""
        bg = torch.tensor(self.background, device=self.model.device)
        if self.kind == "generate":
            return self.model.render(cameras, index, background=self.background, shading="albedo")
        return self.model.render(cameras, index, background=bg)


def occupied(grid, x: torch.Tensor) -> torch.Tensor:
    """``(N,)`` float: 1 where ``x`` ``(N, 3)`` falls in an occupied cell of the occupancy grid's
    finest level (or outside it), else 0."""
    centre = torch.tensor(grid.center, device=x.device, dtype=x.dtype)
    half = torch.tensor(grid.half, device=x.device, dtype=x.dtype)
    u = (x - centre + half) / (2 * half)
    inside = ((u >= 0) & (u <= 1)).all(dim=1)
    r = grid.resolution
    ijk = (u.clamp(0, 1) * r).long().clamp(0, r - 1)
    cells = grid.occupied[0].to(x.device)[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
    return (cells | ~inside).to(x.dtype)


def _axis_directions(device) -> torch.Tensor:
    eye = torch.eye(3, device=device)
    return torch.cat([eye, -eye])


def open_source(path: str | os.PathLike, device: str = "auto") -> Source:
    """Load the checkpoint at ``path`` as a :class:`Source` (module docstring).

    Raises:
        ModelNotFound: no file at ``path``. CheckpointError: a reconstructed surface's field, a
            checkpoint of another kind, or a corrupt one. InputError: a path of the wrong type.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InputError(
            f"checkpoint must be the path of a .safetensors file {WRITERS} wrote, got {path!r}"
        )
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(
            f"checkpoint not found: {path}; pass the checkpoint.safetensors that {WRITERS} wrote"
        )
    kind = read_meta(path).get("kind")
    if kind in SURFACES:
        raise CheckpointError(
            f"checkpoint {path} holds a {kind!r}, a reconstructed surface without colour; "
            f"fields3d edit takes a radiance field: a checkpoint {WRITERS} wrote"
        )
    if kind not in KINDS:
        raise CheckpointError(
            f"checkpoint {path} holds a {kind!r}, not a radiance field; fields3d edit takes a "
            f"checkpoint {WRITERS} wrote"
        )
    from ..models import load_model  # here: models imports this package's model module

    model = load_model(path, device)
    return _scene_of(model, kind, path)


def _scene_of(model, kind: str, path: Path) -> Source:
    if kind == "nerf":
        box = model.field.aabb.double().cpu()
        center = (box[0] + box[1]) / 2
        cams = model.orbit(1)
        distance = float((cams.c2w[0, :3, 3].double().cpu() - center).norm())
        fov = math.degrees(2 * math.atan(cams.width / 2 / float(cams.fx[0])))
        background = tuple(float(v) for v in model.background.cpu())
        return Source(
            model, kind, path, box.tolist(), tuple(center.tolist()), "z", distance, fov, background
        )
    if kind == "generate":
        box = model.field.aabb.double().cpu()
        bg = model.background
        if not isinstance(bg, torch.Tensor):  # a learned background: its mean over directions
            dirs = torch.nn.functional.normalize(torch.randn(256, 3, generator=_gen()), dim=1)
            with torch.no_grad():
                bg = bg(dirs.to(model.device)).mean(0)
        center = tuple(float(v) for v in model.field.center.cpu())
        background = tuple(float(v) for v in bg.cpu())
        return Source(
            model,
            kind,
            path,
            box.tolist(),
            center,
            model.up,
            model.camera_distance,
            model.fov,
            background,
        )
    return Source(
        model,
        kind,
        path,
        model.field.aabb.double().cpu().tolist(),
        tuple(model.center),
        model.up,
        model.camera_distance,
        model.fov,
        tuple(model.background_color),
    )


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)
