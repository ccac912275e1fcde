"""Headless mesh pictures: a vectorised numpy z-buffer rasteriser (no GPU, display or OpenGL).

Camera: orthographic, looking at the centre of the mesh's bounding sphere (centre of the bounding
box, radius to the farthest vertex), which fills ``FILL`` of the picture's half-width whatever the
view, so every view of one mesh shares one scale. ``+y`` is up; ``azimuth`` turns the camera about
``y`` starting from ``+z`` (towards ``+x`` for positive angles), ``elevation`` raises it above the
``xz`` plane. The camera basis is ``right``, ``up`` and ``toward`` (from the centre to the camera).

Rasterisation samples pixel centres with the candidate search of :mod:`fields3d.geometry.raster`
(:func:`~fields3d.geometry.raster.covered_pixels`: every triangle enumerates the pixel centres
inside its bounding box, a tiny triangle of a dense mesh touching none or one, and keeps those with
all barycentric coordinates >= 0), and the nearest wins per pixel (a z-buffer built with
``np.maximum.at`` over the depth toward the camera, so the result does not depend on the order of
the faces).

Shading is two-sided (a back face is shaded with its normal turned toward the camera, so open
meshes look right): ``color * (AMBIENT + HEADLIGHT * n.toward + KEY * max(0, n.key))``, where the
key light comes from the upper left in front of the camera. Normals are smooth (area-weighted
vertex normals interpolated across each face) or flat (one per face).
"""

from __future__ import annotations

import functools
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .._checks import check_int, is_number, to_numpy
from .._io import write_atomic
from ..errors import InputError
from .raster import _check_mesh, covered_pixels

FILL = 0.92  # the bounding sphere's radius as a fraction of the picture's half-width
AMBIENT, HEADLIGHT, KEY = 0.22, 0.48, 0.38
KEY_CAMERA = np.array(
    [-0.45, 0.55, 0.70]
)  # key light direction in camera coordinates (right, up, toward)
DEFAULT_VIEWS = ((30, 20), (120, 20), (210, 20), (300, 60))


def _check_rgb(name: str, value, n_faces: int) -> np.ndarray:
    try:
        rgb = to_numpy(value).astype(np.float64)
    except (TypeError, ValueError):
        rgb = np.full(1, np.nan)
    per_face = name == "color" and rgb.shape == (n_faces, 3)
    if not (rgb.shape == (3,) or per_face) or not np.all((rgb >= 0) & (rgb <= 1)):
        allowed = "three numbers in [0, 1]"
        if name == "color":
            allowed += " or an (F, 3) array of per-face colours"
        raise InputError(f"{name} must be {allowed}, got {_short(value)}")
    return rgb


def _short(value) -> str:
    shape = getattr(value, "shape", None)
    return (
        f"an array of shape {tuple(shape)}"
        if shape is not None and math.prod(shape) > 3
        else repr(value)
    )


def _camera(azimuth: float, elevation: float) -> np.ndarray:
    """Rows ``right``, ``up``, ``toward`` of the camera basis (world coordinates)."""
    az, el = np.radians(azimuth), np.radians(elevation)
    toward = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    right = np.cross([0.0, 1.0, 0.0], toward)
    if np.linalg.norm(right) < 1e-9:  # looking straight down or up: keep the azimuth's heading
        right = np.array([np.cos(az), 0.0, -np.sin(az)])
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(toward, right), toward])


@dataclass(frozen=True)
class _Mesh:
    """A checked mesh and what every view of it shares."""

    verts: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64
    centre: np.ndarray  # (3,) centre of the bounding sphere
    radius: float  # its radius (1 for a mesh that is a single point)

    @functools.cached_property
    def raw_normals(self) -> np.ndarray:
        """(F, 3) face normals scaled by twice the face area."""
        a, b, c = (self.verts[self.faces[:, i]] for i in range(3))
        return np.cross(b - a, c - a)

    @functools.cached_property
    def vertex_normals(self) -> np.ndarray:
        """(V, 3) unit area-weighted vertex normals."""
        raw, idx = self.raw_normals, self.faces.ravel()
        normals = np.stack(
            [
                np.bincount(idx, np.repeat(raw[:, i], 3), minlength=len(self.verts))
                for i in range(3)
            ],
            axis=1,
        )
        return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)


def _prepare(verts, faces) -> _Mesh:
    verts, faces = _check_mesh(verts, faces)
    if len(faces) == 0:
        return _Mesh(verts, faces, np.zeros(3), 1.0)
    used = np.zeros(len(verts), dtype=bool)
    used[faces.ravel()] = True
    points = verts[used]
    centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
    radius = float(np.sqrt(((points - centre) ** 2).sum(axis=1).max()))
    return _Mesh(verts, faces, centre, radius if radius > 0 else 1.0)


def _check_view(azimuth, elevation) -> None:
    for name, value in (("azimuth", azimuth), ("elevation", elevation)):
        if not is_number(value) or not math.isfinite(value):
            raise InputError(f"{name} must be a finite number of degrees, got {value!r}")


def rasterize(
    verts, faces, *, size: int = 512, azimuth: float = 30.0, elevation: float = 20.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise a mesh: which face each pixel sees, and where on it.

    Args:
        verts: ``(V, 3)`` float vertices (numpy or torch). faces: ``(F, 3)`` integer indices.
        size: picture width and height in pixels. azimuth, elevation: the view in degrees.

    Returns:
        ``(face_id, depth, bary)``: ``(size, size)`` int64 index of the visible face, -1 for
        background; ``(size, size)`` float64 distance toward the camera from the bounding sphere's
        centre in units of its radius (larger is nearer, -inf for background); and
        ``(size, size, 3)`` float64 barycentric coordinates of the pixel centre in that face.
    """
    mesh = _prepare(verts, faces)
    check_int("size", size, 1)
    _check_view(azimuth, elevation)
    return _rasterize(mesh, size, _camera(azimuth, elevation))


def _rasterize(
    mesh: _Mesh, size: int, basis: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    faces = mesh.faces
    face_id = np.full(size * size, -1, dtype=np.int64)
    depth = np.full(size * size, -np.inf)
    bary = np.zeros((size * size, 3))
    if len(faces) == 0:
        return face_id.reshape(size, size), depth.reshape(size, size), bary.reshape(size, size, 3)

    cam = (
        (mesh.verts - mesh.centre) @ basis.T / mesh.radius
    )  # (V, 3) right, up, toward; radius units
    half = 0.5 * size
    px = half + cam[:, 0] * half * FILL  # pixel coordinates, x to the right, y down
    py = half - cam[:, 1] * half * FILL
    pz = cam[:, 2]

    pix, f, b = covered_pixels(np.stack([px, py], axis=1), faces, size, size)
    zf = pz[faces[f]]
    z = b[:, 0] * zf[:, 0] + b[:, 1] * zf[:, 1] + b[:, 2] * zf[:, 2]

    np.maximum.at(depth, pix, z)
    win = np.flatnonzero(
        z == depth[pix]
    )  # ties (shared edges) are equal depths: any of them serves
    face_id[pix[win]] = f[win]
    bary[pix[win]] = b[win]
    return face_id.reshape(size, size), depth.reshape(size, size), bary.reshape(size, size, 3)


def render_mesh(
    verts,
    faces,
    *,
    size: int = 512,
    azimuth: float = 30.0,
    elevation: float = 20.0,
    color=(0.75, 0.78, 0.85),
    background=(1.0, 1.0, 1.0),
    smooth: bool = True,
) -> np.ndarray:
    """Render a shaded picture of a mesh (camera and shading in the module docstring).

    Args:
        verts: ``(V, 3)`` float vertices (numpy or torch). faces: ``(F, 3)`` integer indices.
        size: picture width and height in pixels. azimuth, elevation: the view in degrees.
        color: RGB in ``[0, 1]``, or an ``(F, 3)`` array of per-face colours.
        background: RGB in ``[0, 1]``.
        smooth: interpolated vertex normals (True) or one normal per face (False).

    Returns:
        ``(size, size, 3)`` uint8 RGB. An empty mesh gives the background.

    Example:
        >>> import trimesh
        >>> from fields3d.geometry import render_mesh
        >>> ball = trimesh.creation.icosphere(subdivisions=2)  # (V, 3) float64, (F, 3) int64
        >>> picture = render_mesh(ball.vertices, ball.faces, size=64)
        >>> picture.shape, picture.dtype
        ((64, 64, 3), dtype('uint8'))
        >>> picture[0, 0].tolist(), picture[32, 32].tolist()  # background, the lit ball
        ([255, 255, 255], [184, 191, 208])
        >>> round(float((picture != 255).any(axis=2).mean()), 2)  # the disc: pi (0.92 / 2)^2
        0.65
        >>> render_mesh(ball.vertices, ball.faces, size=64, color=(1, 0, 0))[32, 32].tolist()
        [245, 0, 0]
    """
    return _render(_prepare(verts, faces), size, azimuth, elevation, color, background, smooth)


def _render(mesh: _Mesh, size, azimuth, elevation, color, background, smooth) -> np.ndarray:
    check_int("size", size, 1)
    _check_view(azimuth, elevation)
    color = _check_rgb("color", color, len(mesh.faces))
    background = _check_rgb("background", background, len(mesh.faces))
    basis = _camera(azimuth, elevation)
    face_id, _, bary = _rasterize(mesh, size, basis)
    image = np.empty((size, size, 3))
    image[:] = background
    hit = face_id >= 0
    if not hit.any():
        return _to_uint8(image)

    f = face_id[hit]
    raw = mesh.raw_normals[f]
    facing = np.where(raw @ basis[2] >= 0, 1.0, -1.0)  # two-sided: turn back faces to the camera
    n = np.einsum("pk,pkj->pj", bary[hit], mesh.vertex_normals[mesh.faces[f]]) if smooth else raw
    n = n * (facing / np.maximum(np.linalg.norm(n, axis=1), 1e-30))[:, None]
    n_cam = n @ basis.T  # (right, up, toward) components
    key = KEY_CAMERA / np.linalg.norm(KEY_CAMERA)
    light = AMBIENT + HEADLIGHT * np.clip(n_cam[:, 2], 0, 1) + KEY * np.clip(n_cam @ key, 0, 1)
    image[hit] = (color[f] if color.ndim == 2 else color) * light[:, None]
    return _to_uint8(image)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def render_views(
    verts,
    faces,
    *,
    size: int = 384,
    views=DEFAULT_VIEWS,
    color=(0.75, 0.78, 0.85),
    background=(1.0, 1.0, 1.0),
    smooth: bool = True,
) -> np.ndarray:
    """Render several views and tile them two to a row (four views: a 2 x 2 grid).

    Args:
        verts, faces: as for :func:`render_mesh`. size: pixels per view.
        views: ``(azimuth, elevation)`` pairs in degrees.
        color, background, smooth: as for :func:`render_mesh`.

    Returns:
        ``(rows * size, cols * size, 3)`` uint8 with ``cols = min(2, len(views))``; an empty cell
        (an odd number of views) is background.

    Example:
        >>> import trimesh
        >>> from fields3d.geometry import render_views
        >>> box = trimesh.creation.box()
        >>> render_views(box.vertices, box.faces, size=32).shape  # the four default views, 2 x 2
        (64, 64, 3)
        >>> views = [(0, 0), (90, 0), (45, 30)]  # (azimuth, elevation) in degrees
        >>> three = render_views(box.vertices, box.faces, size=32, views=views)
        >>> three.shape, int(three[32:, 32:].min())  # the fourth cell is left background
        ((64, 64, 3), 255)
    """
    try:
        pairs = [(azimuth, elevation) for azimuth, elevation in views]
    except (TypeError, ValueError):
        pairs = []
    if not pairs:
        raise InputError(
            f"views must be a non-empty sequence of (azimuth, elevation) pairs in degrees, got {views!r}"
        )
    check_int("size", size, 1)
    mesh = _prepare(verts, faces)
    cols = min(2, len(pairs))
    rows = -(-len(pairs) // cols)
    grid = np.empty((rows * size, cols * size, 3), dtype=np.uint8)
    grid[:] = _to_uint8(_check_rgb("background", background, 0))
    for i, (azimuth, elevation) in enumerate(pairs):
        r, c = divmod(i, cols)
        grid[r * size : (r + 1) * size, c * size : (c + 1) * size] = _render(
            mesh, size, azimuth, elevation, color, background, smooth
        )
    return grid


def save_mesh_png(verts, faces, path: str | os.PathLike, **kw) -> Path:
    """Write :func:`render_views` as a PNG, atomically (a temporary file beside it, then a rename).

    Args:
        verts, faces: as for :func:`render_mesh`. path: the PNG to write (folders are created).
        **kw: passed to :func:`render_views`.

    Returns:
        The path written.

    Example:
        >>> import pathlib, tempfile
        >>> import trimesh
        >>> from PIL import Image
        >>> from fields3d.geometry import save_mesh_png
        >>> ball = trimesh.creation.icosphere(subdivisions=2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     out = pathlib.Path(tmp) / "views" / "ball.png"  # the folder is created
        ...     path = save_mesh_png(ball.vertices, ball.faces, out, size=48)
        ...     with Image.open(path) as png:
        ...         print(path.name, png.size, png.mode)
        ball.png (96, 96) RGB
    """
    picture = render_views(verts, faces, **kw)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return write_atomic(path, buffer.getvalue())
