"""A perspective z-buffer rasteriser in vectorised numpy (no GPU, display or OpenGL).

Cameras follow the NeRF / OpenGL convention of :mod:`fields3d.render.cameras`: a 4x4
camera-to-world matrix whose camera looks down its ``-z`` axis with ``+x`` right and ``+y`` up, focal
lengths ``fx, fy`` and principal point ``cx, cy`` in pixels, ``x`` to the right from the picture's
left edge and ``y`` down from its top edge. A camera-frame point ``(X, Y, Z)`` (``Z < 0`` in front)
lands at ``x = cx + fx * X / -Z``, ``y = cy - fy * Y / -Z``.

Rasterisation samples pixel centres ``(i + 0.5, j + 0.5)``, so rays from
:func:`fields3d.render.cameras.image_rays` pass through exactly the points it samples. Every
triangle enumerates the pixel centres inside its bounding box, keeps those with all screen-space
barycentric coordinates >= 0, and the nearest wins per pixel (``np.maximum.at`` over the inverse
depth, which is affine in screen space, so the result does not depend on the order of the faces).
Triangles with a vertex closer than ``near`` to the camera plane (or behind it) are dropped, not
clipped: the rasteriser is meant for objects in front of the camera. The barycentric coordinates
returned are perspective-correct (they interpolate world-space attributes exactly).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_int, to_numpy
from ..errors import InputError

CHUNK = 1 << 20  # candidate (face, pixel) pairs rasterised at once (~150 MB of temporaries)


def _check_mesh(verts, faces) -> tuple[np.ndarray, np.ndarray]:
    verts, faces = to_numpy(verts), to_numpy(faces)
    if verts.ndim != 2 or verts.shape[1] != 3 or not np.issubdtype(verts.dtype, np.floating):
        raise InputError(
            f"verts must be a float array of shape (V, 3), got {verts.dtype} {tuple(verts.shape)}"
        )
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise InputError(
            f"faces must be an integer array of shape (F, 3), got {faces.dtype} {tuple(faces.shape)}"
        )
    if len(faces) and (faces.min() < 0 or faces.max() >= len(verts)):
        raise InputError(
            f"faces must index verts (0 to {len(verts) - 1}), got indices from {faces.min()} to {faces.max()}"
        )
    verts = verts.astype(np.float64)
    if not np.isfinite(verts).all():
        raise InputError(
            f"verts must be finite, got {int((~np.isfinite(verts).all(axis=1)).sum())} non-finite rows"
        )
    return verts, faces.astype(np.int64)


def _check_camera(c2w, fx, fy, cx, cy) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    c2w = np.asarray(c2w.detach().cpu() if hasattr(c2w, "detach") else c2w, dtype=np.float64)
    if c2w.shape != (4, 4) or not np.isfinite(c2w).all():
        raise InputError(f"c2w must be a finite 4x4 camera-to-world matrix, got shape {c2w.shape}")
    intrinsics = []
    for name, value in (("fx", fx), ("fy", fy), ("cx", cx), ("cy", cy)):
        value = float(value)
        if not np.isfinite(value) or (name in ("fx", "fy") and value <= 0):
            kind = (
                "a focal length > 0 pixels" if name in ("fx", "fy") else "a finite number of pixels"
            )
            raise InputError(f"{name} must be {kind}, got {value!r}")
        intrinsics.append(value)
    return c2w, tuple(intrinsics)


def project(verts, c2w, fx, fy, cx, cy) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into a picture.

    Args:
        verts: ``(V, 3)`` float world points. c2w: ``(4, 4)`` camera-to-world matrix.
        fx, fy, cx, cy: intrinsics in pixels.

    Returns:
        ``(xy, depth)``: ``(V, 2)`` float64 pixel coordinates and ``(V,)`` float64 depth along the
        viewing axis (``-Z`` in the camera frame, > 0 in front of the camera; points at depth <= 0
        get meaningless ``xy``).
    """
    c2w, (fx, fy, cx, cy) = _check_camera(c2w, fx, fy, cx, cy)
    verts = np.asarray(verts, dtype=np.float64)
    rot, pos = c2w[:3, :3], c2w[:3, 3]
    cam = (verts - pos) @ np.linalg.inv(rot).T  # (V, 3) camera frame
    depth = -cam[:, 2]
    safe = np.where(np.abs(depth) > 1e-300, depth, 1e-300)
    xy = np.stack([cx + fx * cam[:, 0] / safe, cy - fy * cam[:, 1] / safe], axis=1)
    return xy, depth


def rasterize_perspective(
    verts, faces, c2w, fx, fy, cx, cy, width: int, height: int, near: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise a mesh seen by a pinhole camera: which face each pixel centre sees, and where.

    Args:
        verts: ``(V, 3)`` float world vertices (numpy or torch). faces: ``(F, 3)`` integer indices.
        c2w: ``(4, 4)`` camera-to-world matrix. fx, fy, cx, cy: intrinsics in pixels.
        width, height: picture size in pixels. near: faces with a vertex at depth < ``near`` are
            dropped.

    Returns:
        ``(face_id, depth, bary)``: ``(H, W)`` int64 visible face (-1 for background); ``(H, W)``
        float64 depth along the viewing axis (``inf`` for background); ``(H, W, 3)`` float64
        perspective-correct barycentric coordinates in that face (zeros for background).
    """
    verts, faces = _check_mesh(verts, faces)
    check_int("width", width, 1)
    check_int("height", height, 1)
    xy, depth = project(verts, c2w, fx, fy, cx, cy)
    size = height * width
    face_id = np.full(size, -1, dtype=np.int64)
    inv_depth = np.zeros(size)
    bary = np.zeros((size, 3))
    kept = np.flatnonzero((depth[faces] >= near).all(axis=1))
    pix, face, screen = covered_pixels(xy, faces[kept], width, height)
    # perspective correction: weight the screen-space coordinates by 1 / depth, which is affine in
    # screen space
    weighted = screen * (1.0 / np.maximum(depth, near))[faces[kept][face]]
    inv_z = weighted.sum(axis=1)
    b = weighted / inv_z[:, None]
    face = kept[face]  # back to indices into the caller's faces
    if len(pix):
        np.maximum.at(inv_depth, pix, inv_z)
        win = np.flatnonzero(
            inv_z == inv_depth[pix]
        )  # ties (shared edges) are equal depths: any serves
        face_id[pix[win]] = face[win]
        bary[pix[win]] = b[win]
    hit = face_id >= 0
    out_depth = np.full(size, np.inf)
    out_depth[hit] = 1.0 / inv_depth[hit]
    return (
        face_id.reshape(height, width),
        out_depth.reshape(height, width),
        bary.reshape(height, width, 3),
    )


def covered_pixels(
    xy: np.ndarray, faces: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pixel centre each face covers: the candidate search of the rasterisers here and in
    :mod:`fields3d.geometry.pictures`, which then keep the nearest candidate per pixel.

    Each face enumerates the pixel centres ``(i + 0.5, j + 0.5)`` inside its bounding box (in
    chunks of about ``CHUNK`` candidates, to bound the memory) and keeps those with all screen-space
    barycentric coordinates >= 0; faces of (almost) zero screen area cover nothing.

    Args:
        xy: ``(V, 2)`` float64 pixel coordinates of the vertices (``x`` right, ``y`` down).
        faces: ``(F, 3)`` int64 vertex indices. width, height: picture size in pixels.

    Returns:
        ``(pixel, face, bary)``: ``(C,)`` int64 flat pixel index ``y * width + x``, ``(C,)`` int64
        index into ``faces``, ``(C, 3)`` float64 screen-space barycentric coordinates, for the
        ``C`` covered (pixel, face) pairs, face by face.
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)))
    if len(faces) == 0:
        return empty
    x, y = xy[faces, 0], xy[faces, 1]  # (F, 3) each
    x0 = np.clip(np.ceil(x.min(axis=1) - 0.5), 0, width).astype(np.int64)
    x1 = np.clip(np.floor(x.max(axis=1) - 0.5), -1, width - 1).astype(np.int64)
    y0 = np.clip(np.ceil(y.min(axis=1) - 0.5), 0, height).astype(np.int64)
    y1 = np.clip(np.floor(y.max(axis=1) - 0.5), -1, height - 1).astype(np.int64)
    w, h = np.maximum(x1 - x0 + 1, 0), np.maximum(y1 - y0 + 1, 0)
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    count = np.where(np.abs(area) > 1e-12, w * h, 0)
    live = np.flatnonzero(count)
    if len(live) == 0:
        return empty
    ends = np.cumsum(count[live])
    cuts = np.searchsorted(ends, np.arange(CHUNK, ends[-1], CHUNK), side="right")
    out = []
    for chunk in np.split(live, np.unique(cuts)):
        if len(chunk) == 0:
            continue
        n = count[chunk]
        f = np.repeat(chunk, n)
        local = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        px, py = x0[f] + local % w[f], y0[f] + local // w[f]
        sx, sy, fx, fy = px + 0.5, py + 0.5, x[f], y[f]
        b1 = (
            (sx - fx[:, 0]) * (fy[:, 2] - fy[:, 0]) - (fx[:, 2] - fx[:, 0]) * (sy - fy[:, 0])
        ) / area[f]
        b2 = (
            (fx[:, 1] - fx[:, 0]) * (sy - fy[:, 0]) - (sx - fx[:, 0]) * (fy[:, 1] - fy[:, 0])
        ) / area[f]
        screen = np.stack([1.0 - b1 - b2, b1, b2], axis=1)
        inside = (screen >= 0).all(axis=1)
        out.append((py[inside] * width + px[inside], f[inside], screen[inside]))
    return tuple(np.concatenate(parts) for parts in zip(*out))


def interpolate(attributes, faces, face_id: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Interpolate per-vertex attributes over the pixels a rasteriser saw.

    Args:
        attributes: ``(V, C)`` float per-vertex values. faces: ``(F, 3)`` integer indices.
        face_id: ``(H, W)`` int64 from :func:`rasterize_perspective` (-1 for background).
        bary: ``(H, W, 3)`` float64 barycentric coordinates from the same call.

    Returns:
        ``(H, W, C)`` float64, zeros at background pixels.
    """
    attributes = np.asarray(attributes, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if attributes.ndim != 2:
        raise InputError(
            f"attributes must be an array of shape (V, C), got shape {attributes.shape}"
        )
    out = np.zeros(face_id.shape + (attributes.shape[1],))
    hit = face_id >= 0
    corners = attributes[faces[face_id[hit]]]  # (P, 3, C)
    out[hit] = np.einsum("pk,pkc->pc", bary[hit], corners)
    return out
