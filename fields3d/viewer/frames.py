"""One picture of a field from a viewer's camera: ``render_frame``.

A NeRF (:class:`~fields3d.pipelines.nerf.NerfModel`) is rendered through its occupancy grid
(marching + compositing in the core), a reconstructed surface's field
(:class:`~fields3d.pipelines.recon.SdfModel`) by sphere tracing, both by the models' own
``render``. On top of that a viewer picks what to see (:class:`Look`):

- ``rgb``: the colours; ``accumulation``: the opacity of each ray, grey;
- ``depth``: the distance to the surface (a NeRF's expected depth over its opacity), coloured from
  near (dark) to far (bright), background where nothing was hit;
- ``normals``: world-space normals as colours ``(n + 1) / 2`` (an SDF's gradient; for a NeRF the
  normal of the depth map's surface);
- ``slice``: the plane ``axis = offset`` through the field's box, each pixel showing where its ray
  crosses it: the signed distance (blue inside, red outside, dark lines every tenth of the range,
  white at the surface) or the NeRF's density (log scale).

A crop box hides everything outside it: the NeRF's density is zero there; the SDF is intersected
with the box (``max(sdf, box)``), so sphere tracing stays exact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..render.cameras import Cameras, image_rays
from ..render.volume import render_camera
from .preview import nerf_preview

MODES = ("rgb", "depth", "normals", "accumulation", "slice")
AXES = ("x", "y", "z")


@dataclass(frozen=True)
class Look:
    """What a frame shows: ``mode`` (one of :data:`MODES`), ``background`` RGB in [0, 1], ``crop``
    (``((x0, y0, z0), (x1, y1, z1))`` world box, or None), and for ``slice`` the plane's ``axis``
    (``"x"``, ``"y"`` or ``"z"``) and ``offset`` (0 to 1 across the field's box)."""

    mode: str = "rgb"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    axis: str = "z"
    offset: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.axis not in AXES:
            raise InputError(f"axis must be one of x, y, z, got {self.axis!r}")


def field_box(model) -> np.ndarray:
    """``(2, 3)`` float64 world box of a model's field (a NeRF's scene box, an SDF's cube)."""
    box = model.field.aabb if hasattr(model, "grid") else model.aabb()
    return np.asarray(box.detach().cpu().tolist(), dtype=np.float64).reshape(2, 3)


@torch.no_grad()
def render_frame(
    model, cameras: Cameras, look: Look = Look(), *, preview: bool = False
) -> dict[str, np.ndarray]:
    """Camera 0 of ``cameras`` pictured as ``look`` says: ``image`` ``(H, W, 3)`` uint8 and
    ``depth`` ``(H, W)`` float32 (distance along the ray to the surface, inf where none).
    ``preview``: a NeRF is rendered from its baked preview (:mod:`fields3d.viewer.preview`), as
    the viewer does while the camera moves; other models and the slice ignore it.

    Example:
        >>> import torch
        >>> from fields3d.fields import RadianceField
        >>> from fields3d.pipelines.nerf.model import NerfModel
        >>> from fields3d.render import OccupancyGrid, RenderSettings
        >>> from fields3d.viewer.camera import view_camera
        >>> from fields3d.viewer.frames import Look, render_frame
        >>> _ = torch.manual_seed(0)
        >>> box = [[-1, -1, -1], [1, 1, 1]]
        >>> field = RadianceField(box, n_levels=2, log2_hashmap_size=10, base_resolution=4,
        ...                       max_resolution=8, n_hidden=16)
        >>> model = NerfModel(field, OccupancyGrid(box, 16), RenderSettings(step=0.05), torch.ones(3), 0)
        >>> cams = view_camera((1, 0, 0, 0), (0, 0, -3), 0.8, 4, 3).cameras(16)
        >>> frame = render_frame(model, cams, Look(mode="depth"))
        >>> frame["image"].shape, frame["image"].dtype, frame["depth"].shape
        ((12, 16, 3), dtype('uint8'), (12, 16))
    """
    nerf = hasattr(model, "grid")
    background = torch.tensor(look.background, dtype=torch.float32)
    if look.mode == "slice":
        return _slice(model, cameras, look, nerf)
    if nerf:
        out = _render_nerf(model, cameras, look.crop, background, preview)
        opacity = out["opacity"].float()
        depth = torch.where(opacity > 0.5, out["depth"] / opacity.clamp_min(1e-6), torch.inf)
    else:
        out = _render_sdf(model, cameras, look.crop, background)
        opacity = out["opacity"].float()
        depth = torch.where(opacity > 0, out["depth"], torch.inf)
    depth = depth.float().cpu()
    hit = torch.isfinite(depth)
    if look.mode == "rgb":
        image = out["color"].float().cpu()
    elif look.mode == "accumulation":
        image = opacity.cpu()[..., None].expand(*opacity.shape, 3)
    elif look.mode == "depth":
        image = _on_background(_depth_colors(depth, hit), hit, background)
    else:
        normals = (
            out["normals"].float().cpu() if "normals" in out else _depth_normals(cameras, depth)
        )
        image = _on_background((normals + 1) / 2, hit & normals.norm(dim=-1).gt(0), background)
    return {"image": _uint8(image), "depth": depth.numpy()}


def _render_nerf(model, cameras: Cameras, crop, background: torch.Tensor, preview: bool) -> dict:
    background = background.to(model.device)
    fast = nerf_preview(model) if preview else None
    if fast is not None:
        field = fast.field if crop is None else _CroppedRadiance(fast.field, crop)
        cams = cameras.to(model.device)
        return render_camera(field, fast.spec, cams, 0, fast.settings, background)
    if crop is not None:  # the model's own render (a generated field's headlight too), cropped
        model = dataclasses.replace(model, field=_CroppedRadiance(model.field, crop))
    return model.render(cameras, 0, background=background)


def _render_sdf(model, cameras: Cameras, crop, background: torch.Tensor) -> dict:
    if crop is not None:
        lo, hi = (model.norm.to_unit(np.asarray(c, dtype=np.float64)[None])[0] for c in crop)
        model = type(model)(_CroppedSdf(model.field, lo, hi), model.norm, model.kind)
    return model.render(cameras, 0, background=tuple(background.tolist()))


class _CroppedRadiance(torch.nn.Module):
    """A radiance field with zero density outside a world box; anything else (a generated
    field's ``shade``, ``channels``, ``aabb``) comes from the field it wraps."""

    def __init__(self, field, crop) -> None:
        super().__init__()
        self.inner = field
        self.register_buffer("box", torch.tensor(crop, dtype=torch.float32))

    def _inside(self, x: torch.Tensor) -> torch.Tensor:
        box = self.box.to(x)
        return ((x >= box[0]) & (x <= box[1])).all(dim=-1).to(x.dtype)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.density(x) * self._inside(x)

    def forward(self, x: torch.Tensor, dirs: torch.Tensor | None = None):
        sigma, rgb = self.inner(x, dirs)
        return sigma * self._inside(x).to(sigma.dtype), rgb

    def shade(self, x: torch.Tensor, *args, **kwargs):
        sigma, color, normals = self.inner.shade(x, *args, **kwargs)
        return sigma * self._inside(x).to(sigma.dtype), color, normals

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("inner"), name)


class _CroppedSdf(torch.nn.Module):
    """``max(sdf, box sdf)``: the field's solid intersected with a box (unit-cube coordinates)."""

    def __init__(self, field, lo, hi) -> None:
        super().__init__()
        self.inner = field
        self.register_buffer("lo", torch.as_tensor(lo, dtype=torch.float32))
        self.register_buffer("hi", torch.as_tensor(hi, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre, half = (self.lo + self.hi) / 2, (self.hi - self.lo).clamp_min(0) / 2
        q = (x - centre.to(x)).abs() - half.to(x)
        box = q.clamp_min(0).norm(dim=-1) + q.max(dim=-1).values.clamp_max(0)
        return torch.maximum(self.inner(x), box)


def _slice(model, cameras: Cameras, look: Look, nerf: bool) -> dict[str, np.ndarray]:
    """The field on the plane ``axis = offset`` where each pixel's ray crosses it."""
    origins, dirs = image_rays(cameras.to("cpu"), 0)
    box = torch.from_numpy(field_box(model))
    if look.crop is not None:
        crop = torch.tensor(look.crop, dtype=torch.float64)
        box = torch.stack([torch.maximum(box[0], crop[0]), torch.minimum(box[1], crop[1])])
    a = AXES.index(look.axis)
    plane = float(box[0, a] + min(max(look.offset, 0.0), 1.0) * (box[1, a] - box[0, a]))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (plane - origins[:, a]) / dirs[:, a]
    points = origins + dirs * t[:, None]
    on = (
        torch.isfinite(t) & (t > 0) & ((points >= box[0] - 1e-9) & (points <= box[1] + 1e-9)).all(1)
    )
    colors = torch.tensor(look.background, dtype=torch.float32).repeat(t.shape[0], 1)
    if bool(on.any()):
        x = points[on].to(model.device)
        if nerf:
            values = model.field.density(x.float()).float().cpu()
            colors[on] = _turbo(torch.log1p(values) / torch.log1p(values.max()).clamp_min(1e-6))
        else:
            colors[on] = _diverging(model.sdf(x).float().cpu())
    depth = torch.where(on, t, torch.inf).float().view(cameras.height, cameras.width)
    image = colors.view(cameras.height, cameras.width, 3)
    return {"image": _uint8(image), "depth": depth.numpy()}


def _diverging(values: torch.Tensor) -> torch.Tensor:
    """Signed distances as colours: blue inside, red outside, white at 0, dark contour lines."""
    scale = values.abs().max().clamp_min(1e-12)
    v = (values / scale).clamp(-1, 1)
    white = torch.ones(v.shape[0], 3)
    red, blue = torch.tensor([0.85, 0.2, 0.15]), torch.tensor([0.15, 0.3, 0.85])
    outside = white + v.clamp_min(0)[:, None] * (red - white)
    inside = white + (-v).clamp_min(0)[:, None] * (blue - white)
    colors = torch.where(v[:, None] >= 0, outside, inside)
    band = (v * 10).frac().abs()
    lines = (band < 0.06) | (band > 0.94)
    colors[lines] *= 0.55
    return colors


def _turbo(x: torch.Tensor) -> torch.Tensor:
    """Google's turbo colour map (polynomial fit) of values in [0, 1]: ``(N, 3)``."""
    x = x.clamp(0, 1)[:, None]
    powers = torch.cat([x**k for k in range(6)], dim=1)
    coeffs = torch.tensor(
        [
            [0.13572138, 0.09140261, 0.10667330],
            [4.61539260, 2.19418839, 12.64194608],
            [-42.66032258, 4.84296658, -60.58204836],
            [132.13108234, -14.18503333, 110.36276771],
            [-152.94239396, 4.27729857, -89.90310912],
            [59.28637943, 2.82956604, 27.34824973],
        ]
    )
    return (powers @ coeffs).clamp(0, 1)


def _depth_colors(depth: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    image = torch.zeros(*depth.shape, 3)
    if bool(hit.any()):
        d = depth[hit]
        lo, hi = float(d.min()), float(d.max())
        image[hit] = _turbo((d - lo) / max(hi - lo, 1e-12))
    return image


def _depth_normals(cameras: Cameras, depth: torch.Tensor) -> torch.Tensor:
    """World normals of the surface a depth map sees (central differences; 0 at edges and holes)."""
    origins, dirs = image_rays(cameras.to("cpu"), 0)
    h, w = depth.shape
    p = (origins + dirs * depth.reshape(-1, 1).double()).view(h, w, 3)
    dx = torch.zeros_like(p)
    dy = torch.zeros_like(p)
    dx[:, 1:-1] = p[:, 2:] - p[:, :-2]
    dy[1:-1] = p[2:] - p[:-2]
    n = torch.linalg.cross(dy, dx)
    n = torch.nan_to_num(n, nan=0.0, posinf=0.0, neginf=0.0)
    length = n.norm(dim=-1, keepdim=True)
    n = torch.where(length > 0, n / length.clamp_min(1e-30), 0.0)
    toward = (n * dirs.view(h, w, 3)).sum(-1, keepdim=True) > 0  # face the camera
    return torch.where(toward, -n, n).float()


def _on_background(image, mask, background) -> torch.Tensor:
    return torch.where(mask[..., None], image, background.view(1, 1, 3).expand_as(image))


def _uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).contiguous().numpy()
