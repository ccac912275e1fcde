"""A virtual range scanner: point clouds of a mesh as scanners make them, ``virtual_scan``.

Real scans are not uniform samples of a surface. A scanner sees the object from a handful of
viewpoints, so whatever no viewpoint sees is missing (occlusion holes); its depth noise grows with
distance; surfaces seen at a grazing angle return few points or none; the views are registered
to each other only approximately; and reflections add outliers. :func:`virtual_scan` imitates
each of these, deterministically for a seed:

- ``views`` sensors on a Fibonacci sphere around the mesh's bounding-box centre, at ``distance``
  bounding radii, each looking at the centre with a pinhole of ``fov`` degrees and ``side`` x
  ``side`` pixels; a pixel's ray keeps its first hit on the mesh (Open3D's ray casting, from the
  optional ``poisson`` extra).
- Depth noise along each pixel's ray: Gaussian, its standard deviation ``noise`` bounding radii
  at the sensors' distance and growing with the square of the depth (a structured-light or
  stereo sensor's error does).
- Grazing-angle dropout: a hit whose surface normal makes an angle ``a`` with the ray is kept
  with probability 1 below ``grazing[0]`` degrees, 0 above ``grazing[1]``, linearly in between.
- Misregistration: each view's points are moved by its own small rigid motion (a rotation of
  ``misregistration[0]`` degrees about a random axis through the centre and a translation of
  ``misregistration[1]`` radii in a random direction).
- Outliers: a share ``outliers`` of the points replaced by points uniform in the bounding box
  grown by 10%.
- ``max_points``: at most that many points, drawn uniformly without replacement.

Each point keeps the unit direction from its sensor towards it (``view_dirs``), as scanners
report, and the index of its view.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import trimesh

from .._checks import check_int, is_number
from .._io import write_atomic
from ..errors import InputError
from .poisson import _open3d


@dataclass(frozen=True)
class ScanSettings:
    """How :func:`virtual_scan` scans (module docstring). Validated on construction (InputError).

    Example:
        >>> from fields3d.geometry.scan import ScanSettings
        >>> ScanSettings(views=4, noise=0.002).side
        256
        >>> ScanSettings(grazing=(80, 70))
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: grazing must be two angles 0 <= start <= end <= 90 degrees, got (80, 70)
    """

    views: int = 12
    side: int = 256
    fov: float = 40.0
    distance: float = 3.0
    noise: float = 0.0
    grazing: tuple[float, float] = (90.0, 90.0)
    misregistration: tuple[float, float] = (0.0, 0.0)
    outliers: float = 0.0
    max_points: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("views", self.views, 1, 1000)
        check_int("side", self.side, 2, 4096)
        check_int("seed", self.seed, 0)
        _check_range("fov", self.fov, 1.0, 170.0)
        _check_range("distance", self.distance, 1.01, 1000.0)
        _check_range("noise", self.noise, 0.0, 1.0)
        _check_range("outliers", self.outliers, 0.0, 0.9)
        g = self.grazing
        if not (_pair(g) and 0 <= g[0] <= g[1] <= 90):
            raise InputError(
                f"grazing must be two angles 0 <= start <= end <= 90 degrees, got {tuple(g)!r}"
            )
        m = self.misregistration
        if not (_pair(m) and m[0] >= 0 and m[1] >= 0):
            raise InputError(
                "misregistration must be (degrees, radii) >= 0: a rotation angle and a "
                f"translation, got {m!r}"
            )
        if self.max_points is not None:
            check_int("max_points", self.max_points, 1)


@dataclass
class Scan:
    """A virtual scan: ``points`` ``(N, 3)`` float64, ``view_dirs`` ``(N, 3)`` unit (sensor to
    point), ``view_ids`` ``(N,)`` int64, ``origins`` ``(V, 3)`` the sensors' positions, and the
    ``settings`` that made it. Outliers keep the view they replaced a point of."""

    points: np.ndarray
    view_dirs: np.ndarray
    view_ids: np.ndarray
    origins: np.ndarray
    settings: ScanSettings


def virtual_scan(mesh: trimesh.Trimesh, settings: ScanSettings | None = None) -> Scan:
    """Scan ``mesh`` as ``settings`` say (default :class:`ScanSettings`: module docstring); the
    same seed gives the same scan.

    Raises:
        InputError: a mesh with no faces, or a scan in which no ray hit the mesh.
        BackendUnavailable: Open3D cannot be imported (``pip install 'fields3d[poisson]'``).

    Example:
        >>> import trimesh
        >>> from fields3d.geometry.scan import ScanSettings, virtual_scan
        >>> ball = trimesh.creation.icosphere(subdivisions=3)
        >>> scan = virtual_scan(ball, ScanSettings(views=2, side=32, seed=0))
        >>> scan.points.shape[1], scan.origins.shape, sorted(set(scan.view_ids.tolist()))
        (3, (2, 3), [0, 1])
        >>> bool(abs(np.linalg.norm(scan.points, axis=1) - 1).max() < 0.01)  # on the ball
        True
    """
    settings = ScanSettings() if settings is None else settings
    if not isinstance(settings, ScanSettings):
        raise InputError(f"settings must be a ScanSettings, got {type(settings).__name__}")
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InputError("the mesh to scan has no faces; pass a triangle mesh (trimesh.Trimesh)")
    rng = np.random.default_rng(settings.seed)
    lo, hi = mesh.bounds
    centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo) / 2)
    origins = centre + sensor_directions(settings.views) * settings.distance * radius
    hits = _cast(mesh, origins, centre, settings)
    parts = [
        _view_points(hit, origin, k, centre, radius, settings, rng)
        for k, (hit, origin) in enumerate(zip(hits, origins))
    ]
    points = np.concatenate([p[0] for p in parts])
    view_ids = np.concatenate([p[1] for p in parts])
    if len(points) == 0:
        raise InputError("no ray of the virtual scanner hit the mesh; lower distance or raise fov")
    points = _add_outliers(points, view_ids, lo, hi, settings.outliers, rng)
    if settings.max_points is not None and len(points) > settings.max_points:
        keep = np.sort(rng.choice(len(points), settings.max_points, replace=False))
        points, view_ids = points[keep], view_ids[keep]
    dirs = points - origins[view_ids]
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-300)
    return Scan(points, dirs, view_ids, origins, settings)


def sensor_directions(n: int) -> np.ndarray:
    """``(n, 3)`` unit vectors spread evenly over the sphere (a Fibonacci lattice)."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = k * math.pi * (3 - math.sqrt(5))
    r = np.sqrt(np.clip(1 - z * z, 0, None))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _cast(mesh, origins, centre, settings) -> list[dict]:
    """Per view: the hits of its pixels' rays (``t``, unit ``dirs``, ``cos`` of the incidence)."""
    o3d = _open3d()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.asarray(mesh.vertices, dtype=np.float32)),
        o3d.core.Tensor(np.asarray(mesh.faces, dtype=np.uint32)),
    )
    normals = np.asarray(mesh.face_normals, dtype=np.float64)
    out = []
    for origin in origins:
        dirs = _pixel_dirs(origin, centre, settings.side, settings.fov)
        rays = np.concatenate([np.broadcast_to(origin, dirs.shape), dirs], 1).astype(np.float32)
        result = scene.cast_rays(o3d.core.Tensor(rays))
        t = result["t_hit"].numpy().astype(np.float64)
        hit = np.isfinite(t)
        face = result["primitive_ids"].numpy()[hit].astype(np.int64)
        cos = np.abs(np.einsum("ij,ij->i", normals[face], dirs[hit]))
        out.append({"t": t[hit], "dirs": dirs[hit], "cos": cos})
    return out


def _pixel_dirs(origin, centre, side: int, fov: float) -> np.ndarray:
    """``(side * side, 3)`` unit directions of a pinhole at ``origin`` looking at ``centre``."""
    forward = centre - origin
    forward = forward / np.linalg.norm(forward)
    helper = np.array([0.0, 0.0, 1.0]) if abs(forward[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    right = np.cross(forward, helper)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half = math.tan(math.radians(fov) / 2)
    u = (np.arange(side) + 0.5) / side * 2 - 1
    uu, vv = np.meshgrid(u * half, -u * half, indexing="xy")
    dirs = forward + uu.reshape(-1, 1) * right + vv.reshape(-1, 1) * up
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def _view_points(hit, origin, k, centre, radius, settings, rng):
    """One view's points after dropout, depth noise and its misregistration."""
    start, end = (math.cos(math.radians(a)) for a in settings.grazing)  # start >= end
    cos = hit["cos"]
    if start > end:
        chance = np.clip((cos - end) / (start - end), 0.0, 1.0)
    else:
        chance = (cos >= start - 1e-12).astype(np.float64)
    keep = rng.random(len(cos)) < chance
    t = hit["t"][keep]
    if settings.noise > 0:
        nominal = settings.distance * radius
        t = t + rng.normal(size=t.shape) * settings.noise * radius * (t / nominal) ** 2
    points = origin + hit["dirs"][keep] * t[:, None]
    points = _misregister(points, centre, radius, settings.misregistration, rng)
    return points, np.full(len(points), k, dtype=np.int64)


def _misregister(points, centre, radius, misregistration, rng) -> np.ndarray:
    degrees, shift = misregistration
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    if degrees == 0 and shift == 0:
        return points
    rotation = trimesh.transformations.rotation_matrix(math.radians(degrees), axis)[:3, :3]
    return (points - centre) @ rotation.T + centre + direction * shift * radius


def _add_outliers(points, view_ids, lo, hi, share, rng) -> np.ndarray:
    n = int(round(share * len(points)))
    if n == 0:
        return points
    pad = (hi - lo) * 0.1
    picked = rng.choice(len(points), n, replace=False)
    points = points.copy()
    points[picked] = rng.uniform(lo - pad, hi + pad, size=(n, 3))
    return points


def save_scan(path: str | Path, scan: Scan, comment: str = "") -> Path:
    """Write ``scan`` as a binary little-endian PLY: float32 ``x y z`` and the view direction as
    ``vx vy vz`` per point (readers that know only positions, ``fields3d recon`` included, skip
    the extra properties), plus a comment line with the settings. Atomic (temp file + rename)."""
    n = len(scan.points)
    settings = ", ".join(f"{k}={v}" for k, v in asdict(scan.settings).items())
    header = ["ply", "format binary_little_endian 1.0"]
    header += [f"comment {line}" for line in (comment, f"virtual_scan: {settings}") if line]
    header += [f"element vertex {n}"]
    header += [f"property float {c}" for c in ("x", "y", "z", "vx", "vy", "vz")]
    header += ["end_header", ""]
    body = np.concatenate([scan.points, scan.view_dirs], 1).astype("<f4").tobytes()
    return write_atomic(Path(path), "\n".join(header).encode("ascii") + body)


def _pair(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_number, value))


def _check_range(name: str, value, lo: float, hi: float) -> None:
    if not is_number(value) or not lo <= value <= hi:
        raise InputError(f"{name} must be a number from {lo:g} to {hi:g}, got {value!r}")
