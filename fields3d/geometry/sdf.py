"""Signed distance from points to a closed triangle mesh: ``MeshSDF(verts, faces)(points)``.

Distance: for each point, the exact point-triangle distance (Ericson's closest-point regions) to a
set of candidate faces, the smallest winning. The candidates are the ``k`` faces whose centroids
are nearest the point (a scipy cKDTree over the centroids). The true nearest face is among them
unless it is much larger than its neighbours; the distance returned is then to a face slightly
farther away, never shorter than the true one. On the shipped meshes (spot, fandisk, rocker-arm)
``k = 8`` matched a brute-force search over all faces on 600 points near and away from the surface
to 1e-8 of the bounding box (spot and fandisk: to rounding).

Sign: negative inside. It is the sign of ``(p - q) . n`` where ``q`` is the closest point and
``n`` the *angle-weighted pseudo-normal* at ``q`` (Baerentzen & Aanaes, IEEE TVCG 2005): the face
normal when ``q`` lies inside a face, the sum of the two faces' normals on an edge, the
angle-weighted sum of the faces' normals at a vertex. For a closed, consistently wound (outward)
mesh that sign is exact; for an open or self-intersecting mesh "inside" is not defined and the
sign near holes is whatever the nearest face says.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .._checks import check_int
from ..errors import InputError
from .mesh_io import mesh_arrays

CHUNK = 1 << 16  # points per batch of candidate distances (memory ~ CHUNK * k * 200 bytes)
# Closest-point regions of a triangle (a, b, c): the barycentric weights are 0 off the region.
FACE, VERT_A, VERT_B, VERT_C, EDGE_AB, EDGE_BC, EDGE_CA = range(7)


def closest_point_on_triangles(
    p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closest point of triangle ``(a, b, c)`` to ``p``, row by row (Ericson, Real-Time Collision Detection 5.1.5).

    Args:
        p, a, b, c: ``(M, 3)`` float64.

    Returns:
        ``q`` ``(M, 3)`` float64, the closest points, and ``region`` ``(M,)`` int8, one of
        ``FACE``, ``VERT_A``, ``VERT_B``, ``VERT_C``, ``EDGE_AB``, ``EDGE_BC``, ``EDGE_CA``: where on
        the triangle ``q`` lies. Degenerate (zero-area) triangles give finite points on their edges.
    """
    ab, ac, ap, bp, cp = b - a, c - a, p - a, p - b, p - c
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    d3, d4 = _dot(ab, bp), _dot(ac, bp)
    d5, d6 = _dot(ab, cp), _dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v_face, w_face = vb / denom, vc / denom
        t_ab, t_ca = d1 / (d1 - d3), d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    # weights (u, v, w) of (a, b, c) per region; later assignments are the earlier tests in Ericson's order
    region = np.full(len(p), FACE, dtype=np.int8)
    v, w = v_face, w_face
    cases = (
        (EDGE_BC, (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), 1 - t_bc, t_bc),
        (EDGE_CA, (vb <= 0) & (d2 >= 0) & (d6 <= 0), 0.0, t_ca),
        (VERT_C, (d6 >= 0) & (d5 <= d6), 0.0, 1.0),
        (EDGE_AB, (vc <= 0) & (d1 >= 0) & (d3 <= 0), t_ab, 0.0),
        (VERT_B, (d3 >= 0) & (d4 <= d3), 1.0, 0.0),
        (VERT_A, (d1 <= 0) & (d2 <= 0), 0.0, 0.0),
    )
    for code, hit, v_case, w_case in cases:
        region[hit] = code
        v, w = np.where(hit, v_case, v), np.where(hit, w_case, w)
    bad = ~(
        np.isfinite(v) & np.isfinite(w)
    )  # degenerate: fall back to vertex a (another candidate wins)
    v, w = np.where(bad, 0.0, v), np.where(bad, 0.0, w)
    region[bad] = VERT_A
    q = a + v[:, None] * ab + w[:, None] * ac
    return q, region


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, y)


class MeshSDF:
    """Signed distance to a triangle mesh, precomputed once and evaluated on many points.

    Args:
        verts: ``(V, 3)`` float, faces: ``(F, 3)`` int (numpy or torch), a closed mesh wound
            counter-clockwise seen from outside (see the module docstring for the sign otherwise).
        k: candidate faces per point (those with the nearest centroids), >= 1.

    ``sdf(points)``: ``(M, 3)`` float -> ``(M,)`` float64 signed distances, negative inside, in
    the mesh's units. Raises InputError for a mesh without area or bad arguments.
    """

    def __init__(self, verts, faces, *, k: int = 8) -> None:
        check_int("k", k, 1)
        verts, faces = mesh_arrays(verts, faces)
        cross = np.cross(
            verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]]
        )
        double_area = np.linalg.norm(cross, axis=1)
        if len(faces) == 0 or not double_area.sum() > 0:
            raise InputError(
                f"a signed distance needs a mesh with surface area; its {len(faces)} faces have none"
            )
        self.verts, self.faces, self.k = verts, faces, k
        self.face_normals = np.divide(
            cross, double_area[:, None], out=np.zeros_like(cross), where=double_area[:, None] > 0
        )
        self.vertex_normals = _vertex_normals(verts, faces, self.face_normals)
        self.edge_normals = _edge_normals(faces, self.face_normals)
        self._tree = cKDTree(verts[faces].mean(axis=1))

    def __call__(self, points) -> np.ndarray:
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != 3 or points.dtype.kind not in "fiu":
            raise InputError(
                f"points must be numbers of shape (M, 3), got {points.dtype} {tuple(points.shape)}"
            )
        points = points.astype(np.float64, copy=False)
        out = np.empty(len(points))
        for start in range(0, len(points), CHUNK):
            out[start : start + CHUNK] = self._chunk(points[start : start + CHUNK])
        return out

    def _chunk(self, p: np.ndarray) -> np.ndarray:
        k = min(self.k, self._tree.n)
        _, face = self._tree.query(p, k=[*range(1, k + 1)], workers=-1)  # (M, k) candidate faces
        pk = np.repeat(p, k, axis=0)
        tri = self.verts[self.faces[face.reshape(-1)]]
        q, region = closest_point_on_triangles(pk, tri[:, 0], tri[:, 1], tri[:, 2])
        dist2 = np.einsum("ij,ij->i", pk - q, pk - q).reshape(-1, k)
        best = np.argmin(dist2, axis=1)
        rows = np.arange(len(p)) * k + best
        normal = self._pseudo_normal(face[np.arange(len(p)), best], region[rows])
        sign = np.where(np.einsum("ij,ij->i", p - q[rows], normal) < 0, -1.0, 1.0)
        return sign * np.sqrt(dist2[np.arange(len(p)), best])

    def _pseudo_normal(self, face: np.ndarray, region: np.ndarray) -> np.ndarray:
        """``(M, 3)`` angle-weighted pseudo-normals at closest points on ``face`` ``(M,)`` in ``region`` ``(M,)``."""
        normal = self.face_normals[face].copy()
        for code, corner in ((VERT_A, 0), (VERT_B, 1), (VERT_C, 2)):
            hit = region == code
            normal[hit] = self.vertex_normals[self.faces[face[hit], corner]]
        for code, edge in ((EDGE_AB, 0), (EDGE_BC, 1), (EDGE_CA, 2)):
            hit = region == code
            normal[hit] = self.edge_normals[face[hit], edge]
        return normal


def _vertex_normals(verts: np.ndarray, faces: np.ndarray, face_normals: np.ndarray) -> np.ndarray:
    """``(V, 3)``: each vertex's sum of its faces' unit normals weighted by the face's angle there."""
    out = np.zeros_like(verts)
    tri = verts[faces]
    for i in range(3):
        e1, e2 = tri[:, (i + 1) % 3] - tri[:, i], tri[:, (i + 2) % 3] - tri[:, i]
        cos = _dot(e1, e2) / np.maximum(
            np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1), 1e-300
        )
        np.add.at(out, faces[:, i], face_normals * np.arccos(np.clip(cos, -1.0, 1.0))[:, None])
    return out


def _edge_normals(faces: np.ndarray, face_normals: np.ndarray) -> np.ndarray:
    """``(F, 3, 3)``: for edge ``e`` of face ``f`` (ab, bc, ca), the sum of the normals of the faces sharing it."""
    edges = np.stack((faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]), axis=1).reshape(-1, 2)
    _, inverse = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    total = np.zeros((inverse.max() + 1, 3))
    np.add.at(total, inverse, np.repeat(face_normals, 3, axis=0))
    return total[inverse].reshape(len(faces), 3, 3)
