"""What ``fields3d view PATH`` shows, read before any server starts: ``open_source``.

PATH is a NeRF checkpoint or a reconstructed surface's field (``.safetensors``: rendered by our
core from each client's camera), a mesh or a point cloud (sent to the browser as they are), or a
``scenes/*.toml`` job (its training cameras with their pictures, and the NeRF its output folder
holds, if trained). A path that is missing or of another kind fails here with a message that
names it and the kinds that are shown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, ModelNotFound
from ..geometry import mesh_io, pointcloud
from .frames import field_box

KINDS = (
    "a NeRF checkpoint (checkpoint.safetensors), a recon field (.field.safetensors), a mesh "
    f"({', '.join(mesh_io.MESH_EXTENSIONS)}), a point cloud "
    f"({', '.join(pointcloud.POINT_CLOUD_EXTENSIONS[:5])}) or a job file (.toml)"
)
THUMBNAIL_SIDE = 96  # pixels: the training pictures shown in the frustums
MAX_FRUSTUMS = 200


@dataclass
class Source:
    """A thing to view. ``kind``: ``nerf``, ``sdf``, ``mesh``, ``points`` or ``scene`` (a job
    whose NeRF is not trained yet). ``model``: the NeRF or SDF model (rendered per client), or None.
    ``verts``/``faces``: a mesh; ``points``/``colors``: a point cloud; ``cameras``: training
    cameras (:class:`~fields3d.render.cameras.Cameras`) with ``pictures`` (uint8 thumbnails, or
    None); ``box``: ``(2, 3)`` world bounds; ``save_dir``: where screenshots and meshes go."""

    kind: str
    path: Path
    model: object = None
    verts: np.ndarray | None = None
    faces: np.ndarray | None = None
    points: np.ndarray | None = None
    colors: np.ndarray | None = None
    cameras: object = None
    pictures: list | None = None
    box: np.ndarray | None = None

    @property
    def save_dir(self) -> Path:
        return self.path.parent

    @property
    def stem(self) -> str:
        name = self.path.name
        for suffix in (".field.safetensors", ".safetensors", self.path.suffix):
            if name.endswith(suffix):
                return name[: -len(suffix)] or name
        return name


def open_source(path: str | os.PathLike, device: str = "auto") -> Source:
    """Read ``path`` into a :class:`Source` (module docstring).

    Raises:
        ModelNotFound: nothing at ``path``. InputError: a file of another kind, or one that cannot
            be read. CheckpointError: a corrupt or foreign ``.safetensors`` file.
    """
    path = Path(path)
    if not path.exists():
        raise ModelNotFound(f"nothing to view at {path}: no such file; pass {KINDS}")
    if path.is_dir():
        raise InputError(f"cannot view {path}: it is a folder; pass {KINDS}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from ..pipelines.models import load_model

        model = load_model(path, device)
        kind = "nerf" if hasattr(model, "grid") else "sdf"
        cameras = getattr(model, "cameras", None)  # a NeRF's training views; none generated
        return Source(kind, path, model=model, cameras=cameras, box=field_box(model))
    if suffix == ".toml":
        return _job(path, device)
    if suffix in mesh_io.MESH_EXTENSIONS:
        try:
            mesh = mesh_io.load_mesh(path)
        except InputError:
            if suffix != ".ply":
                raise
            return _cloud(path)  # a PLY of vertices alone
        verts = np.asarray(mesh.vertices, dtype=np.float64)
        box = np.stack([verts.min(0), verts.max(0)])
        return Source("mesh", path, verts=verts, faces=np.asarray(mesh.faces), box=box)
    if suffix in pointcloud.POINT_CLOUD_EXTENSIONS:
        return _cloud(path)
    raise InputError(
        f"cannot view {path}: unknown kind {suffix or 'without a suffix'}; pass {KINDS}"
    )


def _cloud(path: Path) -> Source:
    cloud = pointcloud.load_point_cloud(path)
    points = cloud.points
    colors = None
    if cloud.normals is not None:  # shade by normal: the shape reads better than flat colour
        colors = ((cloud.normals + 1) * 127.5).clip(0, 255).astype(np.uint8)
    box = np.stack([points.min(0), points.max(0)])
    return Source("points", path, points=points, colors=colors, box=box)


def _job(path: Path, device: str) -> Source:
    """A NeRF job: its training cameras with thumbnails, and its trained NeRF if there is one."""
    from ..pipelines.models import load_model
    from ..pipelines.nerf import load_job
    from ..pipelines.nerf.checkpoint import CHECKPOINT
    from ..render.datasets import load_scene

    config = load_job(path)
    scene = load_scene(config.data, "train", config.downscale)
    pictures = thumbnails(scene.images, scene.background)
    checkpoint = Path(config.output) / CHECKPOINT
    box = scene.aabb.double().numpy()
    if checkpoint.is_file():
        model = load_model(checkpoint, device)
        return Source("nerf", checkpoint, model, cameras=scene.cameras, pictures=pictures, box=box)
    return Source("scene", path, cameras=scene.cameras, pictures=pictures, box=box)


def thumbnails(images: torch.Tensor, background: torch.Tensor) -> list[np.ndarray]:
    """``(N, H, W, 4)`` straight RGBA pictures as uint8 RGB thumbnails on ``background``."""
    _n, h, w = images.shape[:3]
    factor = max(1, max(h, w) // THUMBNAIL_SIDE)
    small = images[:MAX_FRUSTUMS, ::factor, ::factor].float().cpu()
    rgb = small[..., :3] * small[..., 3:] + background.cpu().view(1, 1, 1, 3) * (1 - small[..., 3:])
    return list((rgb.clamp(0, 1) * 255).to(torch.uint8).numpy())
