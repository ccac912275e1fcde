"""Target guidance (``target:MESH_OR_CHECKPOINT``): the exact denoiser of renders of a known object.

For the distribution concentrated on the picture ``x_target`` of a given object seen from the
render's own camera, the optimal noise prediction at ``z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps``
is exact and needs no network:

    eps_hat(z_t, t) = (z_t - sqrt(abar_t) x_target) / sqrt(1 - abar_t).

Put into the SDS residual of :mod:`fields3d.guidance.sds` the noise cancels:

    w(t) (eps_hat - eps) = w(t) sqrt(abar_t) / sqrt(1 - abar_t) (z - x_target),

a pull of the render toward the target's render from the same camera, weighted per timestep
(with the default ``w = 1 - abar_t``, ``sqrt(abar_t (1 - abar_t))``, at most 1/2). The noise is
still drawn and subtracted, so the prior runs the very code Stable Diffusion guidance runs: it
proves that loop (random cameras, the renderer, the SDS gradient, the field update, the mesh)
converges without any model, and the result can be compared with the target directly (it lives
in the target's coordinates).

The target is a mesh (``.ply``, ``.obj``, ``.off``, ``.stl``, ``.glb``), rendered headless by the
perspective rasteriser of :mod:`fields3d.geometry.raster` from exactly the cameras
:meth:`SphericalCameras.to_cameras` gives the pipeline, or a fields3d checkpoint (a NeRF or a
reconstructed field) rendered by its model (:func:`fields3d.pipelines.models.load_model`). A
mesh is shaded with ``shading="lambert"`` (DreamFusion's diffuse shading with ambient light):
``color * (ambient + (1 - ambient) * max(0, n . l))``, ``n`` the interpolated vertex normal
turned toward the camera, ``l`` the unit direction to the view's point light
(:attr:`SphericalCameras.light`; the camera itself when None), or flat with ``shading="albedo"``
(a silhouette in ``color``); over ``background``. Each picture is rendered at ``supersample``
times the size and box-filtered down (anti-aliased edges, as a volume render has). A checkpoint
renders with its model's own shading over ``background``.

The latents ``z`` are the renders themselves (pixels in ``[0, 1]``), or with ``resolution`` the
renders resized to ``resolution x resolution`` (bilinear, anti-aliased when shrinking: the fast
coarse stage), the target resized the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_choice, check_int, is_number, rgb_triple
from ..errors import InputError, ModelNotFound
from ..geometry import load_mesh
from ..geometry.mesh_io import MESH_EXTENSIONS
from ..geometry.raster import interpolate, rasterize_perspective
from .base import Guidance, SphericalCameras, resolve_device
from .factory import register
from .sds import (
    SD_SCHEDULE,
    T_MAX,
    T_MAX_END,
    T_MIN,
    NoiseSchedule,
    ScoreDistillation,
    weighting,
)

CHECKPOINT_EXTENSIONS = (".safetensors",)
SHADINGS = ("lambert", "albedo")
MAX_RESOLUTION = 4096


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, C, H, W)`` pictures resized to ``size x size``: bilinear (``align_corners=False``),
    anti-aliased when shrinking; the pictures themselves when already that size."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < x.shape[-2] or size < x.shape[-1]
    return F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=shrink)


def _target_path(path) -> Path:
    """The target's path, checked: an existing mesh or checkpoint file."""
    if not isinstance(path, (str, os.PathLike)) or isinstance(os.fspath(path), bytes):
        raise InputError(
            f"the target must be the path of a mesh or checkpoint (a str or os.PathLike), got {type(path).__name__}"
        )
    path = Path(path)
    kinds = f"a mesh ({', '.join(MESH_EXTENSIONS)}) or a fields3d checkpoint (.safetensors)"
    if not path.exists():
        raise ModelNotFound(f"target not found: {path}; pass {kinds} as target:PATH")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix not in MESH_EXTENSIONS + CHECKPOINT_EXTENSIONS:
        what = "a folder" if path.is_dir() else f"a {suffix or 'extensionless'} file"
        raise InputError(f"target {path} is {what}, not {kinds}")
    return path


@register("target")
class TargetGuidance(Guidance):
    """Guidance toward renders of a given mesh or checkpoint (module docstring).

    Args:
        path: the target: a mesh file or a fields3d checkpoint (``target:PATH``).
        prompt: accepted for a uniform command line and recorded in :meth:`config`; the target,
            not the prompt, defines the object.
        resolution: resize renders (and targets) to this many pixels square first, or None
            (default) to use them as they come.
        shading: ``"lambert"`` (default) or ``"albedo"``, for a mesh target.
        color: the mesh's albedo, three numbers in [0, 1] (default 0.8 grey).
        background: behind the target, three numbers in [0, 1] (default white).
        ambient: the ambient share of the Lambertian light, in [0, 1] (default 0.1).
        supersample: pixels per side rendered per output pixel, 1 to 8 (default 2).
        schedule: a scheduler config dict for the noise schedule (default Stable Diffusion's).
        device, seed, weighting, t_min, t_max, t_max_end, grad_clip: as for every prior
            (:class:`~fields3d.guidance.Guidance`, :class:`~fields3d.guidance.sds.ScoreDistillation`).

    Attributes:
        center, radius, up: where the object is (its bounding sphere's centre and radius in its
            own coordinates) and which axis is up (``"y"``; ``"z"`` for a NeRF checkpoint): the
            pipeline puts its cameras and scene box around them.

    Raises:
        ModelNotFound: no file at ``path``. InputError: ``path`` is not a mesh or checkpoint file,
            a mesh that cannot be read, or a bad setting. CheckpointError: a corrupt checkpoint.

    Example:
        >>> import pathlib, torch, fields3d
        >>> from fields3d.guidance import SphericalCameras, TargetGuidance
        >>> spot = pathlib.Path(fields3d.__file__).parents[1] / "assets" / "meshes" / "spot.obj"
        >>> prior = TargetGuidance(spot, device="cpu", seed=0)  # or create(f"target:{spot}")
        >>> prior.up, round(prior.radius, 3)  # the cameras go around its bounding sphere
        ('y', 1.084)
        >>> two = torch.ones(2)
        >>> cams = SphericalCameras(
        ...     torch.tensor([0.0, 180.0]), 15 * two, 2.5 * prior.radius * two, 40 * two,
        ...     center=prior.center,
        ... )  # azimuth, elevation, radius, fov: (B,) each
        >>> color, opacity = prior.render_target(cams, 32)  # the target from those cameras
        >>> color.shape, opacity.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2, 1, 32, 32]))
        >>> renders = torch.ones(2, 3, 32, 32)  # (B, 3, H, W): white pictures
        >>> out = prior(renders, cams, step=0, total_steps=100)
        >>> out.grad.shape, out.diagnostics["t_range"]
        (torch.Size([2, 3, 32, 32]), [20, 980])
        >>> covered = (opacity > 0).expand_as(out.grad)  # white already matches the background
        >>> bool((out.grad[covered] > 0).all()), bool(out.grad[~covered].abs().max() < 1e-6)
        (True, True)
    """

    spec_argument = "path"
    spec_usage = "target:MESH_OR_CHECKPOINT"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        prompt: str | None = None,
        resolution: int | None = None,
        shading: str = "lambert",
        color=(0.8, 0.8, 0.8),
        background=(1.0, 1.0, 1.0),
        ambient: float = 0.1,
        supersample: int = 2,
        schedule: dict | None = None,
        device="auto",
        seed: int = 0,
        weighting: str = "sds",
        t_min: float = T_MIN,
        t_max: float = T_MAX,
        t_max_end: float = T_MAX_END,
        grad_clip: float | None = None,
    ) -> None:
        if resolution is not None:
            check_int("resolution", resolution, 1, MAX_RESOLUTION)
        check_choice("shading", shading, SHADINGS)
        check_int("supersample", supersample, 1, 8)
        if not (is_number(ambient) and 0 <= ambient <= 1):
            raise InputError(f"ambient must be a number in [0, 1], got {ambient!r}")
        if prompt is not None and not isinstance(prompt, str):
            raise InputError(f"prompt must be a string or None, got {type(prompt).__name__}")
        self.device = resolve_device(device)
        self.sds = ScoreDistillation(
            NoiseSchedule.from_config(SD_SCHEDULE if schedule is None else schedule),
            weighting=weighting,
            t_min=t_min,
            t_max=t_max,
            t_max_end=t_max_end,
            grad_clip=grad_clip,
            seed=seed,
        )
        self.path = _target_path(path)
        self.prompt, self.resolution, self.shading = prompt, resolution, shading
        self.color = np.array(rgb_triple("color", color))
        self.background = np.array(rgb_triple("background", background))
        self.ambient, self.supersample = float(ambient), supersample
        self._schedule = schedule
        self.model = None
        if self.path.suffix.lower() in CHECKPOINT_EXTENSIONS:
            self._load_checkpoint()
        else:
            self._load_mesh()

    def _load_mesh(self) -> None:
        mesh = load_mesh(self.path)
        self.verts = np.asarray(mesh.vertices, dtype=np.float64)
        self.faces = np.asarray(mesh.faces, dtype=np.int64)
        a, b, c = (self.verts[self.faces[:, i]] for i in range(3))
        raw = np.cross(b - a, c - a)  # face normals scaled by twice the area
        normals = np.zeros_like(self.verts)
        for i in range(3):
            np.add.at(normals, self.faces[:, i], raw)
        self.normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)
        lo, hi = self.verts.min(axis=0), self.verts.max(axis=0)
        centre = 0.5 * (lo + hi)
        self.center = tuple(float(v) for v in centre)
        self.radius = float(np.linalg.norm(self.verts - centre, axis=1).max()) or 1.0
        self.up = "y"

    def _load_checkpoint(self) -> None:
        # Imported here: pipelines sit above guidance (a checkpoint target is the one place that
        # needs a trained model), and loading them at import would make the package import them.
        from ..pipelines.models import load_model

        self.model = load_model(self.path, str(self.device.type))
        if hasattr(self.model, "aabb"):  # a reconstructed field: +y up, orbits frame 1.1 scales
            box = self.model.aabb().double()
            self.up, scale = "y", float(self.model.norm.scale)
            self.radius = 1.1 * scale
        else:  # a NeRF: scenes are z-up, the field's box holds the object
            box = self.model.field.aabb.double().cpu()
            self.up = "z"
            self.radius = float((box[1] - box[0]).norm()) / 2
        self.center = tuple(float(v) for v in (box[0] + box[1]) / 2)

    def config(self) -> dict:
        return {
            **super().config(),
            "path": str(self.path),
            "prompt": self.prompt,
            "resolution": self.resolution,
            "shading": self.shading,
            "color": self.color.tolist(),
            "background": self.background.tolist(),
            "ambient": self.ambient,
            "supersample": self.supersample,
            "schedule": self._schedule,
        }

    # ---- the target's pictures -------------------------------------------------------------

    def render_target(
        self, cameras: SphericalCameras, size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The target seen from ``cameras``: ``(color, opacity)``, ``(B, 3, size, size)`` and
        ``(B, 1, size, size)`` float32 on the prior's device (opacity: the covered share of each
        pixel, for silhouette metrics)."""
        if not isinstance(cameras, SphericalCameras):
            raise InputError(f"cameras must be SphericalCameras, got {type(cameras).__name__}")
        check_int("size", size, 1, MAX_RESOLUTION)
        s = size * self.supersample
        if self.model is not None:
            color, alpha = self._render_checkpoint(cameras, s)
        else:
            color, alpha = self._render_mesh(cameras, s)
        both = torch.cat([color, alpha], dim=1).float().to(self.device)
        if self.supersample > 1:
            both = F.avg_pool2d(both, self.supersample)
        return both[:, :3].contiguous(), both[:, 3:].contiguous()

    def _render_mesh(self, cameras: SphericalCameras, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        cams = cameras.to_cameras(s, dtype=torch.float64).to("cpu")
        eyes = cameras.positions().cpu().numpy()
        lights = cameras.light_positions().cpu().numpy()
        n = len(cameras)
        color = np.empty((n, s, s, 3))
        alpha = np.zeros((n, s, s, 1))
        for b in range(n):
            face_id, _, bary = rasterize_perspective(
                self.verts,
                self.faces,
                cams.c2w[b],
                float(cams.fx[b]),
                float(cams.fy[b]),
                float(cams.cx[b]),
                float(cams.cy[b]),
                s,
                s,
            )
            hit = face_id >= 0
            color[b] = self.background
            alpha[b][hit] = 1.0
            if not hit.any():
                continue
            if self.shading == "albedo":
                color[b][hit] = self.color
                continue
            points = interpolate(self.verts, self.faces, face_id, bary)[hit]
            normals = interpolate(self.normals, self.faces, face_id, bary)[hit]
            normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)
            facing = np.where((normals * (eyes[b] - points)).sum(axis=1) < 0, -1.0, 1.0)
            to_light = lights[b] - points
            to_light /= np.maximum(np.linalg.norm(to_light, axis=1, keepdims=True), 1e-30)
            diffuse = np.clip((normals * to_light).sum(axis=1) * facing, 0, None)
            light = self.ambient + (1 - self.ambient) * diffuse
            color[b][hit] = self.color * light[:, None]
        to_tensor = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
        return to_tensor(color), to_tensor(alpha)

    def _render_checkpoint(
        self, cameras: SphericalCameras, s: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cams = cameras.to_cameras(s)
        bg = tuple(self.background.tolist())
        color, alpha = [], []
        for b in range(len(cameras)):
            out = self.model.render(cams, b, background=bg)
            color.append(out["color"].float().clamp(0, 1).permute(2, 0, 1).cpu())
            alpha.append(out["opacity"].float().clamp(0, 1)[None].cpu())
        return torch.stack(color), torch.stack(alpha)

    # ---- the prior ---------------------------------------------------------------------------

    def latents(self, renders: torch.Tensor) -> torch.Tensor:
        if renders.shape[1] != 3:
            raise InputError(
                f"target guidance takes RGB renders of shape (B, 3, H, W), got {tuple(renders.shape)}"
            )
        if renders.shape[2] != renders.shape[3]:
            raise InputError(
                "target guidance takes square renders (the cameras' pictures are square), got "
                f"{renders.shape[3]}x{renders.shape[2]}"
            )
        return (
            renders.float() if self.resolution is None else resize(renders.float(), self.resolution)
        )

    def prepare(self, renders: torch.Tensor, cameras: SphericalCameras) -> torch.Tensor:
        color, _ = self.render_target(cameras, renders.shape[-1])
        return color if self.resolution is None else resize(color, self.resolution)

    def predict_noise(
        self, noisy: torch.Tensor, t: torch.Tensor, cameras: SphericalCameras, context
    ) -> torch.Tensor:
        a = self.sds.schedule.alphas_cumprod.to(noisy.device)[t].view(-1, 1, 1, 1)
        return (noisy - a.sqrt() * context) / (1 - a).sqrt()


def pull_coefficient(name: str, alpha_bar: torch.Tensor) -> torch.Tensor:
    """``w(t) sqrt(abar_t) / sqrt(1 - abar_t)``: target guidance's residual is this times
    ``z - x_target`` (module docstring)."""
    return weighting(name, alpha_bar) * alpha_bar.sqrt() / (1 - alpha_bar).sqrt()
