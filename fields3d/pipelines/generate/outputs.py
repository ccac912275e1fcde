"""What a generation leaves behind: the turntable GIF, the coloured mesh (PLY and GLB) and, with
target guidance, how close the mesh came to the target (silhouette IoU, Chamfer-L1)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from ..._io import write_atomic
from ...geometry.marching_cubes import mesh_field
from ...geometry.mesh_io import load_mesh
from ...geometry.metrics import mesh_metrics
from ...geometry.raster import rasterize_perspective
from ...guidance import SphericalCameras
from .._common import write_gif
from .model import GenerativeModel
from .train import render_views

GREY = 128  # a latent field's mesh colour: its latents are no colours

EVAL_ELEVATION = 15.0  # degrees: the evaluation ring's height
EVAL_SIZE = 128  # pixels of the silhouettes compared


def write_turntable(path: Path, model: GenerativeModel, frames: int, size: int, prior=None) -> Path:
    """``frames`` views around the object; a latent-colour field's are rendered at the latent
    size and decoded by ``prior``'s VAE (about ``size`` pixels: a multiple of its upscale)."""
    if model.field.channels == 3:
        cams = model.orbit(frames, size)
        return write_gif(path, [model.render(cams, k)["color"].clamp(0, 1) for k in range(frames)])
    return write_gif(path, list(decoded_turntable(model, frames, size, prior)))


@torch.no_grad()
def decoded_turntable(model: GenerativeModel, frames: int, size: int, prior):
    """A latent field's turntable: ``(size', size', 3)`` pictures decoded by ``prior.vae``."""
    scale = prior.image_size // prior.latent_size
    cams = model.orbit(frames, max(1, size // scale))
    was_training = model.field.training
    model.field.eval()
    try:
        latents = render_views(model, cams, cams.c2w[:, :3, 3], "albedo", 0.0, False)["color"]
        for k in range(frames):
            x = prior.vae.decode((latents[k : k + 1] / prior.scaling_factor).to(prior.dtype))
            yield ((x.sample.float()[0] + 1) / 2).clamp(0, 1).permute(1, 2, 0)
    finally:
        model.field.train(was_training)


def extract_mesh(model: GenerativeModel, resolution: int, level: float):
    """``(verts (V, 3) float64, faces (F, 3) int64, colors (V, 3) uint8)`` of the surface where
    the density (per object radius) crosses ``level``, in the object's coordinates; vertex
    colours from the albedo (plain grey for a latent-colour field)."""
    field = model.field
    radius = field.radius

    def negative_density(x: torch.Tensor) -> torch.Tensor:
        return -field.density(x) * radius

    box = field.aabb.detach().cpu().tolist()
    verts, faces = mesh_field(
        negative_density, box, resolution, -level, device=field.center.device, narrow_band=False
    )
    if not len(faces):
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3), np.uint8)
    if field.channels != 3:
        colors = np.full((len(verts), 3), GREY, np.uint8)
        return verts.double().cpu().numpy(), faces.cpu().numpy(), colors
    with torch.no_grad():
        albedo = torch.cat([field(v)[1] for v in verts.float().split(1 << 16)])
    colors = (albedo.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return verts.double().cpu().numpy(), faces.cpu().numpy(), colors


def write_colored_mesh(path: Path, verts, faces, colors) -> Path:
    """A mesh with vertex colours (PLY or GLB, by the extension), written atomically."""
    import trimesh

    mesh = trimesh.Trimesh(verts, faces, vertex_colors=colors, process=False)
    kind = path.suffix.lower().lstrip(".")
    data = mesh.export(file_type=kind)
    if isinstance(data, str):
        data = data.encode()
    return write_atomic(path, bytes(data) if not isinstance(data, io.BytesIO) else data.getvalue())


def eval_views(center, radius: float, up: str, distance: float, fov: float, n: int):
    """``n`` views evenly around the object, 15 degrees up (:class:`SphericalCameras`)."""
    az = torch.arange(n, dtype=torch.float32) * (360.0 / n)
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    return SphericalCameras(az, full(EVAL_ELEVATION), full(distance), full(fov), center, up)


def silhouette_iou(verts, faces, prior, views: SphericalCameras, size: int = EVAL_SIZE) -> dict:
    """The mesh's silhouettes against the target's (``prior.render_target``) from ``views``:
    ``iou`` over all views' pixels together and ``per_view``."""
    _, alpha = prior.render_target(views, size)
    target = (alpha[:, 0] > 0.5).cpu().numpy()
    cams = views.to_cameras(size, dtype=torch.float64)
    inter = union = 0
    per_view = []
    for b in range(len(views)):
        if len(faces):
            face_id, _, _ = rasterize_perspective(
                verts,
                faces,
                cams.c2w[b],
                float(cams.fx[b]),
                float(cams.fy[b]),
                float(cams.cx[b]),
                float(cams.cy[b]),
                size,
                size,
            )
            mine = face_id >= 0
        else:
            mine = np.zeros((size, size), bool)
        i, u = int((mine & target[b]).sum()), int((mine | target[b]).sum())
        inter, union = inter + i, union + u
        per_view.append(i / u if u else 1.0)
    return {"iou": inter / union if union else 1.0, "per_view": per_view, "size": size}


def target_metrics(verts, faces, prior, views: SphericalCameras) -> dict:
    """Silhouette IoU and, for a mesh target, Chamfer-L1 and F-score (in the target's
    bounding-box diagonals; :func:`fields3d.geometry.mesh_metrics`)."""
    out = {"silhouette": silhouette_iou(verts, faces, prior, views)}
    if getattr(prior, "model", None) is None and len(faces):
        m = mesh_metrics((verts, faces), load_mesh(prior.path), n_points=20_000)
        out["chamfer_l1"] = m["chamfer_l1"]
        out["f_score@1%"] = m["f_score@1%"]
        out["normal_consistency"] = m["normal_consistency"]
    return out
