"""Screened Poisson surface reconstruction (Kazhdan and Hoppe 2013) through Open3D: the baseline.

Open3D is an optional dependency (``pip install 'fields3d[poisson]'``) imported only when
:func:`poisson_reconstruct` runs, so ``import fields3d`` never needs it.

Normal orientation, when no normals are given: Open3D estimates them by PCA over the ``k`` nearest
neighbours and makes them consistent with ``orient_normals_consistent_tangent_plane(k)`` (a
minimum spanning tree over the neighbour graph). That fixes the orientation only up to one global
sign, which is then chosen by the divergence theorem: for a closed surface with outward normals,
``integral of n . (x - c) dA = 3 * volume > 0`` for *any* point ``c``, convex or not. With roughly
uniform samples the mean of ``n_i . (p_i - centroid)`` estimates that integral divided by the area,
so the normals are flipped when the mean is negative. (A vote on how many normals point away from
the centroid counts signs only and can lose on a non-convex shape; the mean of the dot products is
the integral above, so it cannot, up to sampling error.)

Output orientation: Poisson meshes the iso-surface of an indicator function, so the faces follow
the normals. After trimming, the signed volume of the mesh taken about the points' centroid (exact
for a closed mesh, and dominated by the kept surface for a trimmed one) decides: when it is
negative, the faces are flipped so that their normals point outward.
"""

from __future__ import annotations

import time

import numpy as np

from .._checks import check_int, is_number
from ..errors import BackendUnavailable, InputError, first_line

INSTALL_HINT = (
    "install it with `pip install 'fields3d[poisson]'` (Open3D's wheel also needs the system library "
    "libusb-1.0: `sudo apt-get install libusb-1.0-0` on Debian/Ubuntu)"
)
DEPTH_RANGE = (1, 12)


def _open3d():
    try:
        import open3d as o3d
    except (ImportError, OSError) as exc:  # OSError: a shared library (libusb-1.0) is missing
        raise BackendUnavailable(
            f"the Poisson baseline needs Open3D, which could not be imported ({exc}); {INSTALL_HINT}"
        ) from exc
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d


def _check_args(points, normals, depth, density_quantile, k, scale, threads) -> None:
    lo, hi = DEPTH_RANGE
    if not (isinstance(depth, int) and not isinstance(depth, bool)) or not lo <= depth <= hi:
        raise InputError(f"depth must be an integer from {lo} to {hi}, got {depth!r}")
    if not is_number(density_quantile) or not 0.0 <= density_quantile < 1.0:
        raise InputError(f"density_quantile must be a number in [0, 1), got {density_quantile!r}")
    check_int("k", k, 3)
    if not is_number(scale) or not scale >= 1.0:
        raise InputError(f"scale must be a number >= 1, got {scale!r}")
    if threads is not None:
        check_int("threads", threads, 1)
    if normals is not None and normals.shape != points.shape:
        raise InputError(
            f"normals must have the shape of points {tuple(points.shape)}, got {tuple(normals.shape)}"
        )
    if len(points) < k:
        raise InputError(
            f"points must hold at least k = {k} points for Poisson reconstruction, got {len(points)}"
        )


def poisson_reconstruct(
    points: np.ndarray,
    normals: np.ndarray | None = None,
    *,
    depth: int = 9,
    density_quantile: float = 0.02,
    k: int = 30,
    scale: float = 1.1,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reconstruct a triangle mesh from a point cloud with screened Poisson.

    Args:
        points: ``(N, 3)`` float64 positions (validated by the caller), ``N >= k``.
        normals: ``(N, 3)`` outward normals, or None to estimate and orient them (module docstring).
        depth: octree depth, 1 to 12; the finest grid is at most ``2**depth`` cells a side.
        density_quantile: vertices whose Poisson density (how many samples support them) lies below
            this quantile of all densities are removed, with their faces; this trims the surface
            Poisson invents where there are no samples. 0 keeps everything. On a cloud that covers
            the whole surface evenly (say, sampled from a mesh) the lowest densities are noise, so
            trimming punches scattered pinholes (2% of the vertices by definition); pass 0 there.
        k: neighbours for normal estimation and orientation (used only when ``normals`` is None).
        scale: ratio of the reconstruction cube's diameter to the samples' bounding cube's.
        threads: threads for the Poisson solve; None lets Open3D choose.

    Returns:
        ``(verts, faces, info)``: verts ``(V, 3)`` float64, faces ``(F, 3)`` int64 with outward
        normals, and info with stage timings in seconds (``normals_s``, ``orient_s``, ``poisson_s``,
        ``trim_s``), the counts ``n_points``, ``n_verts_raw``, ``n_faces_raw``, ``n_verts``,
        ``n_faces``, ``n_trimmed_verts``, and ``normals`` ("given" or "estimated"),
        ``normals_flipped`` and ``faces_flipped``.

    Raises:
        BackendUnavailable: Open3D cannot be imported (the message says how to install it).
        InputError: an argument is out of range.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    if normals is not None:
        normals = np.ascontiguousarray(normals, dtype=np.float64)
    _check_args(points, normals, depth, density_quantile, k, scale, threads)
    o3d = _open3d()

    info: dict = {
        "n_points": len(points),
        "normals": "given" if normals is not None else "estimated",
    }
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    t = time.perf_counter()
    if normals is None:
        cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=k))
    else:
        cloud.normals = o3d.utility.Vector3dVector(normals)
    info["normals_s"] = time.perf_counter() - t

    t = time.perf_counter()
    flipped = False
    if normals is None:
        try:
            cloud.orient_normals_consistent_tangent_plane(k)
        except (
            RuntimeError
        ) as exc:  # Open3D on degenerate clouds: a plane, a line, too few distinct points
            raise InputError(
                f"Poisson cannot orient the normals of these {len(points)} points "
                f"({first_line(exc)}); they "
                "may lie on a plane or a line: try --method gridpull"
            ) from exc
        estimated = np.asarray(cloud.normals)
        if not _points_outward(points, estimated):
            cloud.normals = o3d.utility.Vector3dVector(-estimated)
            flipped = True
    info["normals_flipped"] = flipped
    info["orient_s"] = time.perf_counter() - t

    t = time.perf_counter()
    mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
        cloud,
        depth=depth,
        scale=float(scale),
        linear_fit=False,
        n_threads=-1 if threads is None else threads,
    )
    info["poisson_s"] = time.perf_counter() - t
    info["n_verts_raw"] = len(mesh.vertices)
    info["n_faces_raw"] = len(mesh.triangles)

    t = time.perf_counter()
    densities = np.asarray(densities)
    n_trimmed = 0
    if density_quantile > 0.0 and len(densities):
        low = densities < np.quantile(densities, density_quantile)
        n_trimmed = int(low.sum())
        mesh.remove_vertices_by_mask(low)
    mesh.remove_duplicated_vertices()
    mesh.remove_duplicated_triangles()
    mesh.remove_degenerate_triangles()
    mesh.remove_unreferenced_vertices()
    verts = np.asarray(mesh.vertices, dtype=np.float64).copy()
    faces = np.asarray(mesh.triangles, dtype=np.int64).copy()
    faces_flipped = False
    if len(faces) and _signed_volume(verts - points.mean(axis=0), faces) < 0.0:
        faces = faces[:, ::-1].copy()
        faces_flipped = True
    info["trim_s"] = time.perf_counter() - t
    info.update(
        n_trimmed_verts=n_trimmed,
        n_verts=len(verts),
        n_faces=len(faces),
        faces_flipped=faces_flipped,
    )
    return verts, faces, info


def _points_outward(points: np.ndarray, normals: np.ndarray) -> bool:
    """Whether consistently oriented normals point outward: mean of ``n . (p - centroid)`` > 0.

    For outward normals of a closed surface the area integral of ``n . (x - c)`` is 3 * volume > 0
    for any ``c`` (divergence theorem), so the sign of the sample mean decides, convex or not.
    """
    return float(np.mean(np.einsum("ij,ij->i", normals, points - points.mean(axis=0)))) > 0.0


def _signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by the triangles about the origin (positive for outward faces)."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)
