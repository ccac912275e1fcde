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

EVAL_ELEVATION = 15.0  # degrees: the evaluation ring's height
EVAL_SIZE = 128  # pixels of the silhouettes compared


def write_turntable(path: Path, model: GenerativeModel, frames: int, size: int) -> Path:
    cams = model.orbit(frames, size)
    return write_gif(path, [model.render(cams, k)["color"].clamp(0, 1) for k in range(frames)])


def extract_mesh(model: GenerativeModel, resolution: int, level: float):
    """``(verts (V, 3) float64, faces (F, 3) int64, colors (V, 3) uint8)`` of the surface where
    the density (per object radius) crosses ``level``, in the object's coordinates; vertex
    colours from the albedo."""
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
