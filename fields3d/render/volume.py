"""Rendering a radiance field along rays: march the occupancy grid, drop the samples behind
opaque surfaces, query the field, composite. Shared by the NeRF pipeline and viewers.

The field is anything with ``density(x) -> (N,)`` and ``field(x, dirs) -> (sigma (N,), rgb (N, 3))``
(:class:`fields3d.fields.RadianceField`). Pruning evaluates densities once without gradients and
keeps the samples a ray reaches before its transmittance falls below ``t_min`` (nerfacc's
two-pass scheme): the field then runs with gradients only where they can be non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from .cameras import Cameras, image_rays
from .composite import DEFAULT_T_MIN, composite_samples, render_samples
from .march import DEFAULT_MAX_SAMPLES, GridSpec, RaySamples, march_rays


@dataclass(frozen=True)
class RenderSettings:
    """How rays are sampled and composited (:func:`render_rays`, :func:`render_image`).

    Attributes:
        step: the marching step, in scene units (:func:`march_rays`' ``step``).
        cone: steps grow as ``t * cone`` (0: fixed steps). near: where each ray starts.
        t_min: transmittance at which a ray stops (:func:`composite`).
        max_samples: the most samples per call of :func:`render_rays`.
        prune: drop the samples behind opaque surfaces before querying the field with gradients.

    Example:
        >>> from fields3d.render import RenderSettings
        >>> settings = RenderSettings(step=0.01, near=0.1)
        >>> settings.cone, settings.t_min, settings.max_samples, settings.prune
        (0.0, 0.0001, 16777216, True)
    """

    step: float  # marching step, in scene units
    cone: float = 0.0
    near: float = 0.0
    t_min: float = DEFAULT_T_MIN
    max_samples: int = DEFAULT_MAX_SAMPLES
    prune: bool = True


def prune_samples(field, samples: RaySamples, origins, dirs, t_min: float) -> RaySamples:
    """Keep the samples each ray reaches with transmittance >= t_min (densities without gradients)."""
    if samples.n_samples == 0:
        return samples
    with torch.no_grad():
        sigmas = field.density(samples.midpoints(origins, dirs)).to(samples.t_starts.dtype)
        res = composite_samples(samples, sigmas, sigmas.new_zeros(sigmas.shape[0], 0), t_min=t_min)
    return samples.select(res.trans > 0)


def render_rays(
    field,
    spec: GridSpec,
    origins: torch.Tensor,  # (R, 3)
    dirs: torch.Tensor,  # (R, 3)
    settings: RenderSettings,
    background=None,
) -> dict[str, torch.Tensor]:
    """Colour ``(R, 3)``, depth, opacity ``(R,)``, ``n_samples`` (queried) and ``n_rendered`` of rays
    through a field. Rays past ``settings.max_samples`` are not rendered: only the first
    ``n_rendered`` rows are valid (:func:`render_image` renders the rest in further calls).

    Args:
        field: a radiance field (module docstring), e.g. :class:`fields3d.fields.RadianceField`.
        spec: the grid to march (:meth:`GridSpec.from_aabb` or ``OccupancyGrid.spec()``).
        origins, dirs: ``(R, 3)`` float32 rays (float64 on the CPU too), unit ``dirs``.
        settings: :class:`RenderSettings`.
        background: None (black: premultiplied colour), a colour (a number, ``(3,)`` or
            ``(R, 3)``), or a background *field*: a callable taking the ``(R, 3)`` unit directions
            and returning ``(R, 3)`` colours (an environment, or the small direction MLP
            text-to-3D trains beside the object), differentiable like the rest.

    Returns:
        ``color`` ``(R, 3)``, ``depth`` and ``opacity`` ``(R,)`` in the rays' dtype, differentiable
        w.r.t. the field's parameters; ``n_samples`` and ``n_rendered`` ints.

    Example:
        >>> import torch
        >>> from fields3d.fields import RadianceField
        >>> from fields3d.render import GridSpec, RenderSettings, render_rays
        >>> _ = torch.manual_seed(0)
        >>> field = RadianceField([[-1, -1, -1], [1, 1, 1]], n_levels=2, log2_hashmap_size=10,
        ...                       base_resolution=4, max_resolution=8, n_hidden=16)
        >>> origins = torch.tensor([[0.0, 0.0, -3.0]]).repeat(4, 1)
        >>> dirs = torch.nn.functional.normalize(torch.rand(4, 3) * 0.2 + torch.tensor([0, 0, 1]), dim=1)
        >>> out = render_rays(field, GridSpec.from_aabb(field.aabb), origins, dirs,
        ...                   RenderSettings(step=0.05), background=1.0)
        >>> out["color"].shape, out["depth"].shape, out["opacity"].shape, out["n_rendered"]
        (torch.Size([4, 3]), torch.Size([4]), torch.Size([4]), 4)
        >>> bool(((out["color"] >= 0) & (out["color"] <= 1)).all()), out["color"].requires_grad
        (True, True)
    """
    if callable(background) and not isinstance(background, torch.Tensor):
        background = _background_field(background, dirs)
    samples = march_rays(
        origins,
        dirs,
        spec,
        step=settings.step,
        near=settings.near,
        cone=settings.cone,
        max_samples=settings.max_samples,
    )
    if settings.prune:
        samples = prune_samples(field, samples, origins, dirs, settings.t_min)
    x = samples.midpoints(origins, dirs)
    sigmas, rgb = field(x, dirs[samples.ray_ids])
    out = render_samples(
        samples,
        sigmas.to(origins.dtype),
        rgb.to(origins.dtype),
        background=background,
        t_min=settings.t_min,
    )
    out["n_samples"] = samples.n_samples
    out["n_rendered"] = samples.n_rays - samples.rays_dropped
    return out


def _background_field(fn, dirs: torch.Tensor) -> torch.Tensor:
    colors = fn(dirs)
    if not isinstance(colors, torch.Tensor) or colors.shape != (dirs.shape[0], 3):
        got = tuple(colors.shape) if isinstance(colors, torch.Tensor) else type(colors).__name__
        raise InputError(
            f"a background field must map the (R, 3) ray directions to (R, 3) colours; for "
            f"{dirs.shape[0]} rays it returned {got}"
        )
    return colors


@torch.no_grad()
def render_image(
    field,
    spec: GridSpec,
    origins: torch.Tensor,  # (H * W, 3)
    dirs: torch.Tensor,  # (H * W, 3)
    height: int,
    width: int,
    settings: RenderSettings,
    background,
    chunk: int = 1 << 13,
) -> dict[str, torch.Tensor]:
    """Render ``height * width`` rays (row-major) in chunks: ``color`` (H, W, 3), ``depth``, ``opacity`` (H, W).
    ``background`` as for :func:`render_rays`; a colour per ray is ``(height * width, 3)``.

    Args:
        field, spec, settings, background: as for :func:`render_rays`.
        origins, dirs: ``(height * width, 3)`` rays, row-major (as from
            :func:`fields3d.render.cameras.image_rays`).
        height, width: the picture's size. chunk: the most rays per :func:`render_rays` call.

    Returns:
        ``color`` ``(H, W, 3)``, ``depth`` and ``opacity`` ``(H, W)`` in the rays' dtype, without
        gradients.

    Example:
        >>> import torch
        >>> from fields3d.fields import RadianceField
        >>> from fields3d.render import GridSpec, RenderSettings, render_image
        >>> from fields3d.render.cameras import image_rays, ring_cameras
        >>> _ = torch.manual_seed(0)
        >>> field = RadianceField([[-1, -1, -1], [1, 1, 1]], n_levels=2, log2_hashmap_size=10,
        ...                       base_resolution=4, max_resolution=8, n_hidden=16)
        >>> cams = ring_cameras((0, 0, 0), 3.0, frames=1, size=6)
        >>> origins, dirs = image_rays(cams, 0)  # (36, 3) each
        >>> out = render_image(field, GridSpec.from_aabb(field.aabb), origins, dirs, 6, 6,
        ...                    RenderSettings(step=0.05), background=1.0, chunk=8)
        >>> out["color"].shape, out["depth"].shape, out["opacity"].shape
        (torch.Size([6, 6, 3]), torch.Size([6, 6]), torch.Size([6, 6]))
    """
    per_ray = isinstance(background, torch.Tensor) and background.dim() == 2
    parts, i = [], 0
    while i < origins.shape[0]:
        bg = (
            background[i : i + chunk]
            if per_ray and background.shape[0] == origins.shape[0]
            else background
        )
        out = render_rays(field, spec, origins[i : i + chunk], dirs[i : i + chunk], settings, bg)
        n = out["n_rendered"]
        if n == 0:
            raise InputError(
                f"one ray needs more than max_samples={settings.max_samples} samples; "
                "raise max_samples or the marching step"
            )
        parts.append({k: out[k][:n] for k in ("color", "depth", "opacity")})
        i += n
    color = torch.cat([p["color"] for p in parts]).view(height, width, 3)
    depth = torch.cat([p["depth"] for p in parts]).view(height, width)
    opacity = torch.cat([p["opacity"] for p in parts]).view(height, width)
    return {"color": color, "depth": depth, "opacity": opacity}


def render_camera(
    field,
    spec: GridSpec,
    cameras: Cameras,
    index: int,
    settings: RenderSettings,
    background,
    chunk: int = 1 << 13,
) -> dict[str, torch.Tensor]:
    """:func:`render_image` of camera ``index``'s full picture, with the field in eval mode for the call."""
    origins, dirs = image_rays(cameras, index)
    was_training = field.training
    field.eval()
    try:
        return render_image(
            field, spec, origins, dirs, cameras.height, cameras.width, settings, background, chunk
        )
    finally:
        field.train(was_training)
