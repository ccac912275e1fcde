"""Point clouds: loading (clouds, or meshes sampled), checks, surface sampling, normalisation
(outliers: :mod:`fields3d.geometry.outliers`).

Formats read by :func:`load_point_cloud`:

- ``.ply``: a point cloud (normals read from ``nx ny nz`` when present) or a mesh, which is sampled;
- ``.xyz``, ``.pts``, ``.txt``: whitespace-separated text, 3 numbers a line (points) or 6 (points
  and normals); ``#`` starts a comment; a ``.pts`` file may begin with a line holding the count;
- ``.npy``: an ``(N, 3)`` or ``(N, 6)`` numeric array;
- ``.obj``, ``.off``, ``.stl``, ``.glb``: meshes, sampled area-weighted with face normals (an OBJ or
  OFF without faces is read as its vertices).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from .._checks import MAX_POINTS, check_int, check_seed, is_int, to_numpy
from ..errors import InputError, ModelNotFound
from .mesh_io import _or_list, _triangles_in, _trimesh_load, rescaled

TEXT_EXTENSIONS = (".xyz", ".pts", ".txt")
MESH_ONLY_EXTENSIONS = (".obj", ".off", ".stl", ".glb")
POINT_CLOUD_EXTENSIONS = (".ply", *TEXT_EXTENSIONS, ".npy", *MESH_ONLY_EXTENSIONS)
MIN_POINTS = 10
_TEXT_LAYOUT = "each line needs 3 (x y z) or 6 (x y z nx ny nz) numbers separated by spaces"


@dataclass
class PointCloud:
    """Points with optional normals.

    ``points``: ``(N, 3)`` float64. ``normals``: ``(N, 3)`` float64 unit vectors, or None.
    ``source``: the file name or a description, used in error messages. ``len(cloud)`` is N.
    Nothing is checked on construction: :func:`load_point_cloud` returns validated clouds, and
    :func:`validate_point_cloud` checks one built by hand.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry import PointCloud
        >>> points = np.random.default_rng(0).random((100, 3))  # (N, 3) float64
        >>> cloud = PointCloud(points, None, "a random cube")
        >>> len(cloud), cloud.points.shape, cloud.points.dtype, cloud.normals
        (100, (100, 3), dtype('float64'), None)
    """

    points: np.ndarray
    normals: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.points)


def load_point_cloud(
    path: str | os.PathLike, *, n_samples: int = 50_000, seed: int = 0
) -> PointCloud:
    """Read a point cloud, or sample ``n_samples`` points (seeded) from a mesh file.

    Args:
        path: a ``.ply``, ``.xyz``, ``.pts``, ``.txt`` or ``.npy`` point cloud, or an ``.obj``,
            ``.off``, ``.stl``, ``.glb`` (or ``.ply``) mesh (formats in the module docstring).
        n_samples: points drawn area-weighted from a mesh, 10 to ``MAX_POINTS`` (a cloud's own
            points are all kept).
        seed: the mesh sampling's seed.

    Returns:
        A validated :class:`PointCloud` (see :func:`validate_point_cloud`) whose ``source`` is the
        path: ``points`` ``(N, 3)`` float64, ``normals`` ``(N, 3)`` float64 unit vectors (from the
        file, or the sampled faces' normals) or None.

    Raises:
        ModelNotFound: a missing file. InputError: an unsupported extension, an unreadable file,
            or a cloud that fails validation.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np, trimesh
        >>> from fields3d.geometry import load_point_cloud
        >>> points = np.random.default_rng(0).normal(size=(500, 3))  # (N, 3)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     np.savetxt(pathlib.Path(tmp) / "scan.xyz", points)  # 3 numbers a line
        ...     cloud = load_point_cloud(pathlib.Path(tmp) / "scan.xyz")
        ...     _ = trimesh.creation.icosphere(radius=2.0).export(pathlib.Path(tmp) / "ball.obj")
        ...     sampled = load_point_cloud(pathlib.Path(tmp) / "ball.obj", n_samples=1000)
        >>> cloud.points.shape, cloud.normals is None, bool(np.array_equal(cloud.points, points))
        ((500, 3), True, True)
        >>> sampled.points.shape, sampled.normals.shape  # a mesh: samples and their faces' normals
        ((1000, 3), (1000, 3))
        >>> bool(np.allclose(np.linalg.norm(sampled.points, axis=1), 2.0, atol=0.05))
        True
    """
    check_int("n_samples", n_samples, MIN_POINTS, MAX_POINTS)
    check_seed(seed)
    path = Path(path)
    if not path.exists():
        raise ModelNotFound(
            f"point cloud not found: {path}; pass the path of a {_or_list(POINT_CLOUD_EXTENSIONS)} file"
        )
    ext = path.suffix.lower()
    if ext not in POINT_CLOUD_EXTENSIONS:
        shown = f"unsupported extension '{path.suffix}'" if path.suffix else "no extension"
        raise InputError(
            f"cannot read point cloud {path}: {shown}; use one of {', '.join(POINT_CLOUD_EXTENSIONS)} "
            "(meshes are sampled)"
        )
    if ext in TEXT_EXTENSIONS:
        data = _read_text(path, ext)
    elif ext == ".npy":
        data = _read_npy(path)
    else:
        loaded = _trimesh_load(path, "point cloud")
        mesh = _triangles_in(loaded)
        if mesh is not None:
            points, normals = _sample_surface(
                mesh.vertices, mesh.faces, n_samples, seed, name=str(path)
            )
            return validate_point_cloud(PointCloud(points, normals, str(path)))
        data = _vertices_of(loaded)
    normals = data[:, 3:6] if data.shape[1] == 6 else None
    return validate_point_cloud(PointCloud(data[:, :3], normals, str(path)))


def validate_point_cloud(cloud: PointCloud) -> PointCloud:
    """Check a cloud and return a clean copy: float64 contiguous arrays, normals scaled to unit length.

    Raises InputError (naming ``cloud.source``) for: points that are not numbers of shape (N, 3),
    no points, fewer than 10, NaN or infinite coordinates, all points identical, and normals of the
    wrong shape, with NaN or infinite components, or of zero length.
    """
    src = cloud.source
    points = _numbers_n3(cloud.points, src)
    n = len(points)
    if n == 0:
        raise InputError(
            f"point cloud {src} holds no points; pass a file with at least {MIN_POINTS} points"
        )
    if n < MIN_POINTS:
        raise InputError(
            f"point cloud {src} holds only {n} points; at least {MIN_POINTS} are needed to fit a surface"
        )
    points = _finite_points(points, src)
    if not np.ptp(points, axis=0).any():
        raise InputError(
            f"point cloud {src}: all {n} points are identical, so it has zero extent; "
            "a surface needs points spread out in space"
        )
    normals = cloud.normals
    if normals is not None:
        normals = np.asarray(normals)
        if normals.dtype.kind not in "fiu" or normals.shape != (n, 3):
            raise InputError(
                f"point cloud {src}: normals must be numbers of shape ({n}, 3), one per point, "
                f"got {normals.dtype} {tuple(normals.shape)}; pass matching normals or none"
            )
        normals = np.asarray(normals, dtype=np.float64)
        bad = ~np.isfinite(normals).all(axis=1)
        if bad.any():
            raise InputError(
                f"point cloud {src} has NaN or infinite normals at {int(bad.sum())} of its {n} points "
                f"(first at index {int(np.argmax(bad))}); fix them or leave the normals out"
            )
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        bad = length[:, 0] < 1e-12
        if bad.any():
            raise InputError(
                f"point cloud {src} has zero-length normals at {int(bad.sum())} of its {n} points "
                f"(first at index {int(np.argmax(bad))}); fix them or leave the normals out"
            )
        normals = np.ascontiguousarray(normals / length)
    return PointCloud(points, normals, src)


def sample_mesh(mesh: trimesh.Trimesh, n: int, *, seed: int = 0, noise: float = 0.0) -> PointCloud:
    """``n`` points drawn uniformly by area on the surface of ``mesh``, with their faces' unit normals.

    Deterministic for a given ``seed``, mesh and face order.

    Args:
        mesh: a ``trimesh.Trimesh`` (``vertices`` ``(V, 3)``, ``faces`` ``(F, 3)``) with area.
        n: number of samples, >= 1.
        seed: the sampling's seed.
        noise: standard deviation of Gaussian noise added to every coordinate, in the mesh's
            units (normals are left exact), >= 0.

    Returns:
        An unvalidated :class:`PointCloud`: ``points`` and ``normals`` ``(n, 3)`` float64.
        Raises InputError for a mesh without area.

    Example:
        >>> import numpy as np, trimesh
        >>> from fields3d.geometry import sample_mesh
        >>> box = trimesh.creation.box(extents=(2.0, 2.0, 2.0))  # the cube [-1, 1]^3
        >>> cloud = sample_mesh(box, 2000, seed=0)
        >>> cloud.points.shape, cloud.normals.shape, cloud.source
        ((2000, 3), (2000, 3), '2000 samples of mesh')
        >>> bool((np.abs(cloud.points).max(axis=1) > 1 - 1e-9).all())  # each on a face of the cube
        True
        >>> bool((np.abs(cloud.normals).max(axis=1) == 1).all())  # each normal along an axis
        True
        >>> noisy = sample_mesh(box, 2000, seed=0, noise=0.01)  # the same points, moved
        >>> round(float(np.std(noisy.points - cloud.points)), 3)
        0.01
    """
    check_int("n", n, 1)
    check_seed(seed)
    if not _is_real(noise) or not (math.isfinite(noise) and noise >= 0):
        raise InputError(f"noise must be a number >= 0, got {noise!r}")
    name = str(mesh.metadata.get("file_path") or mesh.metadata.get("file_name") or "mesh")
    points, normals = _sample_surface(mesh.vertices, mesh.faces, n, seed, name=name)
    if noise > 0:
        points += np.random.default_rng([seed, 1]).normal(scale=noise, size=points.shape)
    return PointCloud(points, normals, f"{n} samples of {name}")


def knn_distance(points: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its ``k``-th nearest other point.

    ``points``: ``(N, 3)`` with N >= 2; ``k`` from 1 to N - 1. Returns ``(N,)`` float64.
    Duplicated points are each other's neighbours at distance 0.
    """
    points = np.asarray(points)
    if points.dtype.kind not in "fiu" or points.ndim != 2 or points.shape[1] != 3:
        raise InputError(
            f"points must be numbers of shape (N, 3), got {points.dtype} {tuple(points.shape)}"
        )
    n = len(points)
    if n < 2:
        raise InputError(f"knn_distance needs at least 2 points, got {n}")
    if not is_int(k) or not 1 <= k <= n - 1:
        raise InputError(
            f"k must be an integer from 1 to {n - 1} (the number of other points), got {k!r}"
        )
    points = points.astype(np.float64, copy=False)
    distance, _ = cKDTree(points).query(points, k=[k + 1], workers=-1)
    return distance[:, 0]


#: The range of a :class:`Normalization`'s scale and centre (world units).
MIN_SCALE, MAX_SCALE, WORLD_LIMIT = 1e-12, 1e12, 1e12


@dataclass
class Normalization:
    """A translation and uniform scale between world coordinates and the cube ``[-1, 1]^3``.

    ``unit = (world - center) / scale``; ``center`` ``(3,)`` float64 within :data:`WORLD_LIMIT` of the
    origin, ``scale`` from :data:`MIN_SCALE` to :data:`MAX_SCALE`: past those the float32 the fields and
    renderers compute in turns world coordinates into zeros or infinities (a scale of 1e38 rendered
    as an index error, 1e-300 as a picture of nothing). Normals are unchanged by it (the scale is uniform).

    :meth:`fit` centres a cloud's bounding box; :meth:`to_unit` and :meth:`to_world` map ``(N, 3)``
    points either way (numpy in, float64 out; a torch tensor keeps its dtype and device);
    :meth:`to_dict` and :meth:`from_dict` carry it in a checkpoint's JSON. InputError for a bad
    centre or scale.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry import Normalization
        >>> points = np.array([[0.0, 0.0, 0.0], [4.0, 2.0, 2.0]])  # (N, 3)
        >>> norm = Normalization.fit(points)  # the longest half-side, 2, maps to 0.9
        >>> norm.center.tolist(), round(norm.scale, 4)
        ([2.0, 1.0, 1.0], 2.2222)
        >>> norm.to_unit(points).round(2).tolist()
        [[-0.9, -0.45, -0.45], [0.9, 0.45, 0.45]]
        >>> bool(np.allclose(norm.to_world(norm.to_unit(points)), points))
        True
        >>> norm.to_dict()  # what a checkpoint keeps; Normalization.from_dict reads it back
        {'center': [2.0, 1.0, 1.0], 'scale': 2.2222222222222223}
    """

    center: np.ndarray
    scale: float

    def __post_init__(self) -> None:
        center = np.asarray(self.center, dtype=np.float64) if _numeric(self.center) else None
        if center is None or center.shape != (3,) or not np.isfinite(center).all():
            raise InputError(f"center must be 3 finite numbers, got {self.center!r}")
        if not np.abs(center).max() <= WORLD_LIMIT:
            raise InputError(
                f"center must lie within {WORLD_LIMIT:g} of the origin, got {self.center!r}"
            )
        if not _is_real(self.scale) or not (math.isfinite(self.scale) and self.scale > 0):
            raise InputError(f"scale must be a finite number > 0, got {self.scale!r}")
        if not MIN_SCALE <= self.scale <= MAX_SCALE:
            raise InputError(
                f"scale must be from {MIN_SCALE:g} to {MAX_SCALE:g}, got {self.scale!r}"
            )
        self.center, self.scale = center, float(self.scale)

    @classmethod
    def fit(cls, points, *, extent: float = 0.9) -> Normalization:
        """Centre the bounding box of ``points`` ``(N, 3)`` and map its longest half-side to ``extent``."""
        if not _is_real(extent) or not (math.isfinite(extent) and extent > 0):
            raise InputError(f"extent must be a number > 0, got {extent!r}")
        points = to_numpy(points)
        if points.dtype.kind not in "fiu" or points.ndim != 2 or points.shape[1] != 3:
            raise InputError(
                f"points must be numbers of shape (N, 3), got {points.dtype} {tuple(points.shape)}"
            )
        if len(points) == 0:
            raise InputError("cannot fit a normalization to 0 points")
        if not np.isfinite(points).all():
            raise InputError(
                "cannot fit a normalization to points with NaN or infinite coordinates"
            )
        lo, hi = points.min(axis=0).astype(np.float64), points.max(axis=0).astype(np.float64)
        half = float((hi - lo).max()) / 2
        if half == 0:
            raise InputError(
                f"cannot fit a normalization: all {len(points)} points are identical (zero extent)"
            )
        center, scale = (lo + hi) / 2, half / extent
        if not MIN_SCALE <= scale <= MAX_SCALE or not np.abs(center).max() <= WORLD_LIMIT:
            raise InputError(
                f"cannot fit a normalization: the points' bounding box is {2 * half:.3g} across around "
                f"({', '.join(f'{c:.3g}' for c in center)}); fields3d works with sizes from {2 * MIN_SCALE:g} to "
                f"{2 * MAX_SCALE:g} within {WORLD_LIMIT:g} of the origin: rescale or translate the points"
            )
        return cls(center=center, scale=scale)

    def to_unit(self, points):
        """World -> unit coordinates; numpy (returns float64) or torch (keeps dtype and device)."""
        if isinstance(points, torch.Tensor):
            return (
                points - torch.as_tensor(self.center, dtype=points.dtype, device=points.device)
            ) / self.scale
        return (np.asarray(points, dtype=np.float64) - self.center) / self.scale

    def to_world(self, points):
        """Unit -> world coordinates; numpy (returns float64) or torch (keeps dtype and device)."""
        if isinstance(points, torch.Tensor):
            return points * self.scale + torch.as_tensor(
                self.center, dtype=points.dtype, device=points.device
            )
        return np.asarray(points, dtype=np.float64) * self.scale + self.center

    def to_dict(self) -> dict:
        return {"center": [float(c) for c in self.center], "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict) -> Normalization:
        if not isinstance(d, dict) or set(d) != {"center", "scale"}:
            raise InputError(
                f"a normalization must be a dict with keys 'center' and 'scale', got {d!r}"
            )
        return cls(center=d["center"], scale=d["scale"])


def _numbers_n3(points, src) -> np.ndarray:
    points = np.asarray(points)
    if points.dtype.kind not in "fiu":
        raise InputError(f"point cloud {src}: points must be numbers, got dtype {points.dtype}")
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(
            f"point cloud {src}: points must have shape (N, 3), got {tuple(points.shape)}"
        )
    return points


def _finite_points(points: np.ndarray, src) -> np.ndarray:
    """``points`` as contiguous float64; InputError naming the first row with NaN or inf."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        raise InputError(
            f"point cloud {src} has NaN or infinite coordinates in {int(bad.sum())} of its {len(points)} rows "
            f"(first at index {int(np.argmax(bad))}); remove those rows"
        )
    return points


def principal_spreads(points: np.ndarray) -> np.ndarray:
    """The root-sum-square spread of ``points`` ``(N, 3)`` about their mean along each principal axis,
    ascending, measured on a power-of-two rescale (no overflow near 1e300): only ratios mean anything."""
    centred = rescaled(np.asarray(points, dtype=np.float64))
    centred = centred - centred.mean(axis=0)
    return np.sqrt(np.maximum(np.linalg.eigvalsh(centred.T @ centred), 0.0))


def check_not_a_line(points: np.ndarray, src) -> None:
    """InputError when the points ``(N, 3)`` lie on one line (within 1e-6 of its length): surface
    fits wrap them in a thin tube, which is no surface of the scan. (One far-off point makes any
    cloud such a line: callers that can drop outliers check after doing so.)"""
    spread = principal_spreads(points)
    if spread[1] <= 1e-6 * spread[2]:
        raise InputError(
            f"point cloud {src}: all {len(points)} points lie on one line (their spread across it is "
            f"{spread[1] / spread[2]:.1g} of their spread along it); a surface needs points spread out in two "
            "directions at least"
        )


def _is_real(x) -> bool:
    """True for Python and numpy real numbers, not bools."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _numeric(x) -> bool:
    try:
        return np.asarray(x).dtype.kind in "fiu"
    except (TypeError, ValueError):
        return False


def _sample_surface(
    vertices, faces, n: int, seed: int, *, name: str = "mesh"
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` area-weighted samples of triangles ``vertices[faces]`` and the faces' unit normals (float64)."""
    vertices, faces = np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise InputError(
            f"cannot sample {name}: its faces index vertices from {int(faces.min())} to "
            f"{int(faces.max())}, but it has {len(vertices)}; repair or re-export the file"
        )
    triangles = vertices[faces]
    if len(triangles) == 0:
        raise InputError(f"cannot sample {name}: it holds no triangles")
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    small = rescaled(triangles)  # areas from a power-of-two copy: the same samples, no overflow
    cross = np.cross(small[:, 1] - small[:, 0], small[:, 2] - small[:, 0])
    double_area = np.linalg.norm(cross, axis=1)
    cdf = np.cumsum(double_area)
    if not math.isfinite(cdf[-1]) or cdf[-1] <= 0:
        what = (
            "has NaN or infinite vertices"
            if not math.isfinite(cdf[-1])
            else "has zero surface area"
        )
        raise InputError(f"cannot sample {name}: it {what}")
    rng = np.random.default_rng(seed)
    # side="right": a zero-area face (cdf equal to its predecessor's) is never chosen
    face = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(cdf) - 1)
    u, v = rng.random((2, n, 1))
    root = np.sqrt(u)
    points = (1 - root) * a[face] + (root * (1 - v)) * b[face] + (root * v) * c[face]
    normals = cross[face] / double_area[face, None]
    return points, normals


def _read_text(path: Path, ext: str) -> np.ndarray:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(
            f"cannot read point cloud {path}: it is not a text file; {_TEXT_LAYOUT}"
        ) from None
    skip, declared = 0, None
    if ext == ".pts":  # an optional first line holding the number of points
        for index, line in enumerate(lines):
            values = line.split("#", 1)[0].split()
            if values:
                if len(values) == 1 and values[0].isdigit():
                    skip, declared = index + 1, int(values[0])
                break
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            data = np.loadtxt(lines[skip:], comments="#", ndmin=2, dtype=np.float64)
    except ValueError:
        data = None
    if data is None or (data.size and data.shape[1] not in (3, 6)):
        data = _parse_text_slowly(
            path, lines, skip
        )  # finds the line at fault and says what is wrong with it
    if data.size == 0:
        data = np.zeros((0, 3))
    if declared is not None and declared != len(data):
        raise InputError(
            f"cannot read point cloud {path}: its first line declares {declared} points but "
            f"{len(data)} follow; the file may be truncated"
        )
    return data


def _parse_text_slowly(path: Path, lines: list[str], skip: int) -> np.ndarray:
    rows = []
    for number, line in enumerate(lines[skip:], start=skip + 1):
        values = line.split("#", 1)[0].split()
        if values:
            rows.append((number, values))
    if not rows:
        return np.zeros((0, 3))
    width = len(rows[0][1])
    for number, values in rows:
        if len(values) not in (3, 6):
            count = f"{len(values)} value" + ("" if len(values) == 1 else "s")
            raise InputError(
                f"cannot read point cloud {path}: line {number} has {count}; {_TEXT_LAYOUT}"
            )
        if len(values) != width:
            raise InputError(
                f"cannot read point cloud {path}: line {number} has {len(values)} values but line "
                f"{rows[0][0]} has {width}; every line needs the same count, 3 (x y z) or 6 (x y z nx ny nz)"
            )
    for number, values in rows:
        for value in values:
            try:
                float(value)
            except ValueError:
                raise InputError(
                    f"cannot read point cloud {path}: line {number} holds {value!r}, which is not a number; "
                    f"{_TEXT_LAYOUT}"
                ) from None
    return np.array([values for _, values in rows], dtype=np.float64)


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read point cloud {path}: {detail}; check that it is a complete, valid .npy file"
        ) from exc
    if not isinstance(array, np.ndarray):  # np.load opens an .npz archive whatever its name
        array.close()
        raise InputError(
            f"cannot read point cloud {path}: it is an .npz archive, not an .npy array; save the "
            "points with numpy.save"
        )
    if array.dtype.kind not in "fiu":
        raise InputError(
            f"cannot read point cloud {path}: it holds an array of dtype {array.dtype}; "
            "a .npy point cloud must hold numbers"
        )
    if array.ndim != 2 or array.shape[1] not in (3, 6):
        raise InputError(
            f"cannot read point cloud {path}: it holds an array of shape {tuple(array.shape)}; a .npy "
            "point cloud must have shape (N, 3) for points or (N, 6) for points and normals"
        )
    return array.astype(np.float64)


def _vertices_of(loaded) -> np.ndarray:
    """``(N, 3)`` or ``(N, 6)`` (with PLY ``nx ny nz``) from a face-less trimesh result."""
    if isinstance(loaded, trimesh.Scene):  # e.g. a GLB holding points: transforms applied by dump()
        clouds = [g for g in loaded.dump() if isinstance(g, trimesh.PointCloud)]
        if not clouds:
            return np.zeros((0, 3))
        return np.concatenate([np.asarray(g.vertices, dtype=np.float64) for g in clouds])
    points = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64).reshape(
        -1, 3
    )
    raw = loaded.metadata.get("_ply_raw", {}).get("vertex", {}).get("data", {})
    # ASCII PLY gives a dict of columns, binary PLY a structured array
    names = (
        (raw.dtype.names or ())
        if isinstance(raw, np.ndarray)
        else raw
        if isinstance(raw, dict)
        else ()
    )
    if all(key in names for key in ("nx", "ny", "nz")):
        normals = np.stack(
            [np.asarray(raw[key], dtype=np.float64).reshape(-1) for key in ("nx", "ny", "nz")],
            axis=1,
        )
        if normals.shape == points.shape:
            return np.concatenate([points, normals], axis=1)
    return points
