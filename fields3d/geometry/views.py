"""View directions of a scan: where each point was seen from, as many scanners report.

A scan's PLY may give each point the unit direction from its sensor towards it as the vertex
properties ``vx vy vz`` (:func:`fields3d.geometry.scan.save_scan` writes them):
:func:`read_view_dirs` reads them, :func:`check_view_dirs` checks them (one unit vector a point),
and :func:`facing_away` finds the points whose outward normal faces away from the sensor that
saw them: a surface seen from outside has ``n . v < 0`` for a point seen along ``v``.

Why not orient the normals by the views instead: on closed shapes the closing's gradient already
orients them (0 and 1 wrong of 50k points on 12-view scans of spot and the fandisk), and turning
them to face their sensors made 79 wrong on the fandisk (noisy normals at its creases) and 986 on
the bunny (its inside, seen through the base), where that cost 0.018 of normal consistency.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .mesh_io import _trimesh_load

#: How far from unit length a view direction may be (float32 files round to about 1e-7).
UNIT_TOLERANCE = 1e-3
#: :func:`facing_away`'s threshold: a normal more than 60 degrees past perpendicular to the view.
FACING_AWAY_COS = 0.5


def read_view_dirs(path: str | os.PathLike) -> np.ndarray | None:
    """The ``vx vy vz`` vertex properties of a ``.ply`` point cloud, or None (another format, a
    mesh, or a cloud without them).

    Args:
        path: a point cloud file (only ``.ply`` files carry view directions).

    Returns:
        ``(N, 3)`` float64 as written, one row a vertex in the file's order, unchecked
        (:func:`check_view_dirs` checks them), or None.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np, trimesh
        >>> from fields3d.geometry.scan import ScanSettings, save_scan, virtual_scan
        >>> from fields3d.geometry.views import read_view_dirs
        >>> scan = virtual_scan(trimesh.creation.icosphere(), ScanSettings(views=2, side=16))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     dirs = read_view_dirs(save_scan(pathlib.Path(tmp) / "scan.ply", scan))
        >>> dirs.shape == scan.points.shape, bool(np.allclose(dirs, scan.view_dirs, atol=1e-6))
        (True, True)
    """
    path = Path(path)
    if path.suffix.lower() != ".ply":
        return None
    loaded = _trimesh_load(path, "point cloud")
    if len(getattr(loaded, "faces", ())):
        return None
    raw = loaded.metadata.get("_ply_raw", {}).get("vertex", {}).get("data", {})
    names = raw.dtype.names or () if isinstance(raw, np.ndarray) else tuple(raw)
    if not all(key in names for key in ("vx", "vy", "vz")):
        return None
    return np.stack(
        [np.asarray(raw[key], dtype=np.float64).reshape(-1) for key in ("vx", "vy", "vz")], axis=1
    )


def check_view_dirs(view_dirs, n: int, source: str) -> np.ndarray:
    """``view_dirs`` as ``(n, 3)`` float64 unit vectors (renormalised), or InputError.

    Args:
        view_dirs: an array-like of ``(n, 3)`` numbers: each point's unit direction from its sensor.
        n: the number of points. source: the cloud's name, for the messages.

    Raises:
        InputError: not numbers of shape ``(n, 3)``, or a row that is not finite or whose length
            is more than :data:`UNIT_TOLERANCE` from 1.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry.views import check_view_dirs
        >>> check_view_dirs([[0, 0, 1], [0.6, 0.8, 0]], 2, "scan.ply").tolist()
        [[0.0, 0.0, 1.0], [0.6, 0.8, 0.0]]
        >>> check_view_dirs([[0, 0, 2], [0.6, 0.8, 0]], 2, "scan.ply")
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: view directions of scan.ply must be unit vectors from the sensor to each point: 1 of 2 are not (first at index 0, length 2); normalise them or leave vx vy vz out
    """
    dirs = np.asarray(view_dirs)
    if dirs.dtype.kind not in "fiu" or dirs.shape != (n, 3):
        raise InputError(
            f"view directions of {source} must be numbers of shape ({n}, 3), one unit vector a "
            f"point, got {dirs.dtype} {tuple(dirs.shape)}; write vx vy vz for every point or none"
        )
    dirs = dirs.astype(np.float64)
    length = np.linalg.norm(dirs, axis=1)
    bad = ~(np.abs(length - 1.0) <= UNIT_TOLERANCE)  # NaN and infinite rows are bad too
    if bad.any():
        first = int(np.argmax(bad))
        raise InputError(
            f"view directions of {source} must be unit vectors from the sensor to each point: "
            f"{int(bad.sum())} of {n} are not (first at index {first}, length "
            f"{length[first]:.3g}); normalise them or leave vx vy vz out"
        )
    return dirs / length[:, None]


def facing_away(
    normals: np.ndarray, view_dirs: np.ndarray, cos: float = FACING_AWAY_COS
) -> np.ndarray:
    """Which points' outward normals face away from the sensor that saw them: ``n . v > cos``.

    A sensor sees a surface from the side its outward normal points to, so such a point is no
    point of the outer surface: a stray (its normal, fitted to the neighbours it happens to have,
    points anywhere) or a surface seen from behind, as the inside of the Stanford bunny is through
    the holes in its base.

    Args:
        normals: ``(N, 3)`` float64 outward unit normals. view_dirs: ``(N, 3)`` unit directions
            from each point's sensor towards it. cos: the threshold, in ``[0, 1)``.

    Returns:
        ``(N,)`` bool.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry.views import facing_away
        >>> normals = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
        >>> view_dirs = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.99, 0.141]])
        >>> facing_away(normals, view_dirs).tolist()  # seen from above, from below, edge-on
        [False, True, False]
    """
    return np.einsum("ni,ni->n", normals, view_dirs) > cos
