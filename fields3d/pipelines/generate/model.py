"""A generated object loaded from its checkpoint alone, to render from any camera: ``load_generative``.

``fields3d generate`` leaves ``OUT/checkpoint.safetensors``; :func:`fields3d.pipelines.models.load_model`
opens it as a :class:`GenerativeModel` (``kind == "generate"``), which renders like the other
models (``model.orbit(frames, width)``, ``model.render(cameras, i)``): the albedo lit by a
headlight (Lambertian, ambient 0.1) over the run's background.

    model = load_generative("out/mug/checkpoint.safetensors")
    picture = model.render(model.orbit(24), 0)["color"]   # (H, W, 3)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from ..._checks import check_int, rgb_triple
from ...errors import CheckpointError, InputError, one_line
from ...fields.generative import BackgroundField, GenerativeField
from ...render.cameras import Cameras, ring_cameras
from ...render.occupancy import OccupancyGrid
from ...render.volume import RenderSettings, render_camera
from .._common import resolve_device
from .checkpoint import KIND, read_checkpoint, restore_modules

ORBIT_SIZE = 256  # pixels of an orbit's pictures unless a width is given
ORBIT_ELEVATION = 15.0


class ShadedField(nn.Module):
    """The radiance-field interface (``density``, ``forward``) of a :class:`GenerativeField`
    lit by a point light at ``light`` (``(3,)``), for :func:`fields3d.render.render_camera`."""

    def __init__(
        self,
        field: GenerativeField,
        light: torch.Tensor,
        shading: str = "lambert",
        ambient: float = 0.1,
    ) -> None:
        super().__init__()
        self.field, self.shading, self.ambient = field, shading, ambient
        self.register_buffer("light", light.float())

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return self.field.density(x)

    def forward(self, x: torch.Tensor, dirs: torch.Tensor):
        if self.shading == "albedo":
            return self.field(x)
        sigma, color, _ = self.field.shade(x, self.light, self.shading, self.ambient, False)
        return sigma.detach(), color.detach()


@dataclass
class GenerativeModel:
    """A generated field with its occupancy grid, render settings and background."""

    field: GenerativeField
    grid: OccupancyGrid
    settings: RenderSettings
    background: BackgroundField | torch.Tensor
    step: int
    camera_distance: float  # the training cameras' mean distance, scene units
    fov: float  # degrees
    up: str
    kind: str = KIND

    @property
    def device(self) -> torch.device:
        return self.field.center.device

    def orbit(self, frames: int, width: int | None = None) -> Cameras:
        """``frames`` square views circling the object (``width`` pixels, default 256) at the
        training cameras' mean distance, 15 degrees up."""
        check_int("frames", frames, 1)
        return ring_cameras(
            self.field.center.tolist(),
            self.camera_distance,
            frames,
            width or ORBIT_SIZE,
            self.fov,
            ORBIT_ELEVATION,
            self.up,
        ).to(self.device)

    @torch.no_grad()
    def render(
        self,
        cameras: Cameras,
        index: int = 0,
        *,
        background=None,
        shading: str = "lambert",
        chunk: int = 1 << 13,
    ) -> dict[str, torch.Tensor]:
        """Camera ``index``'s picture: ``color`` (H, W, 3), ``depth`` and ``opacity`` (H, W),
        lit by a headlight (``shading``: ``"lambert"``, ``"textureless"`` or ``"albedo"``).

        A latent-colour field (``fields3d generate`` with ``latent_field``) has no pictures of its
        own: InputError (its run's ``turntable.gif`` holds the VAE's decoding)."""
        if self.field.channels != 3:
            raise InputError(
                f"this generated field renders {self.field.channels} latent colour channels, not "
                "pictures: its run's turntable.gif holds them decoded by Stable Diffusion's VAE"
            )
        if isinstance(cameras, Cameras):
            cameras = cameras.to(self.device)
        eye = cameras.c2w[index, :3, 3]
        shaded = ShadedField(self.field, eye, shading)
        if background is not None:
            bg = torch.tensor(rgb_triple("background", background), device=self.device)
        elif isinstance(self.background, torch.Tensor):
            bg = self.background
        else:
            bg = self.background
        return render_camera(shaded, self.grid.spec(), cameras, index, self.settings, bg, chunk)


def load_generative(path: str | os.PathLike, device: str = "auto") -> GenerativeModel:
    """The model in a checkpoint written by ``fields3d generate``, on ``device``.

    Raises:
        ModelNotFound: no file at ``path``. CheckpointError: not a generation checkpoint, or a
            corrupt or incomplete one. BackendUnavailable: ``device="cuda"`` without CUDA.
    """
    target = resolve_device(device)
    tensors, meta = read_checkpoint(path)
    try:
        field = GenerativeField.from_config(meta["field"], device=target)
        grid = OccupancyGrid(field.aabb.tolist(), resolution=meta["grid_resolution"]).to(target)
        background = (
            BackgroundField(device=target, channels=field.channels)
            if meta["background"] == "learned"
            else torch.tensor(rgb_triple("background", meta["background"]), device=target)
        )
        holder = _Holder(field, grid, background)
        restore_modules(holder, tensors)
        config = meta["config"]
        scene = meta["scene"]
        distance = sum(config["radius_range"]) / 2 * float(scene["radius"])
        fov = sum(config["fov_range"]) / 2
        settings = RenderSettings(step=float(meta["render_step"]))
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, InputError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete generation "
            f"({type(exc).__name__}: {one_line(exc)}); generate it again with `fields3d generate`"
        ) from exc
    field.eval()
    return GenerativeModel(
        field, grid, settings, background, int(meta["step"]), distance, fov, scene["up"]
    )


@dataclass
class _Holder:
    field: GenerativeField
    grid: OccupancyGrid
    background: BackgroundField | torch.Tensor
