"""Marching cubes (CPU and CUDA kernels in the core) and meshing of a field by narrow-band evaluation.

Conventions, shared by every function here (the core's, see ``cuda/geometry/marching_cubes.h``):

* ``volume[i, j, k]`` sits at ``origin + (i, j, k) * spacing``; vertices come out in those world
  coordinates, in the volume's dtype.
* A value counts as *below* the level when ``value <= level``: a value exactly at the level is
  below. An edge crosses where its two ends fall on different sides, and its vertex sits at
  ``t = (level - v0) / (v1 - v0)`` from the lower-index end (the level is first rounded to the
  volume's dtype). A grid value exactly at the level therefore puts vertices on that grid point;
  zero-area triangles appear only there (or where a value is within rounding of the level).
* One vertex per crossing edge, shared by all the cubes around it (a welded mesh). Faces wind
  counter-clockwise seen from the side *above* the level, so normals point toward increasing
  values: outward for a signed distance that is negative inside.
* Triangulation: the classic 256-case Lorensen/Bourke table. Each cube face's ambiguity is
  resolved from that face alone, so closed level sets give watertight meshes; ambiguous cases may
  be split differently from scikit-image's tables (same vertices, possibly other faces).
* Output order is fixed: the same for any CPU thread count, and the same on CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .. import _core_ops, _native
from .._checks import MAX_GRID, check_int, dtype_str, is_int, is_number, parse_device, shape_str
from ..errors import FieldsError, InputError

COARSEST_CELLS = 16  # narrow band: the coarsest level has at least this many cells per axis
BAND_SLACK = 1.01  # narrow band: margin on the Lipschitz bound, for rounding in the field's values
_CUBE_CORNERS = (
    (0, 0, 0),
    (1, 0, 0),
    (1, 1, 0),
    (0, 1, 0),
    (0, 0, 1),
    (1, 0, 1),
    (1, 1, 1),
    (0, 1, 1),
)


def marching_cubes(
    volume: torch.Tensor,  # (X, Y, Z)
    level: float = 0.0,
    *,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    spacing: Sequence[float] | float = (1.0, 1.0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triangle mesh of the level set ``volume == level``.

    Args:
        volume: ``(X, Y, Z)`` float32 or float64 samples, ``X, Y, Z >= 2``, on the CPU or a CUDA
            device, any strides; every value finite.
        level: the iso-value (finite).
        origin: world position of ``volume[0, 0, 0]`` (3 finite numbers).
        spacing: distance between neighbouring samples, 3 positive finite numbers (or one for all
            axes), each a normal number of the volume's dtype (at least its ``finfo.tiny``). The
            core computes ``origin + p * spacing`` in the volume's dtype: ``|origin|``,
            ``(size - 1) * spacing`` and the far corner must stay within that dtype's range.

    Returns:
        ``verts`` ``(V, 3)`` in the volume's dtype and ``faces`` ``(F, 3)`` int64 vertex ids, both
        on the volume's device; ``(0, 3)`` each when the level set does not cross the volume.

    Example:
        >>> import torch
        >>> from fields3d.geometry import marching_cubes
        >>> axis = torch.linspace(-1, 1, 17)  # 17 samples a side: spacing 2 / 16
        >>> x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
        >>> volume = (x**2 + y**2 + z**2).sqrt() - 0.6  # (17, 17, 17): distance to a sphere
        >>> verts, faces = marching_cubes(volume, origin=(-1, -1, -1), spacing=2 / 16)
        >>> verts.shape, verts.dtype, faces.shape, faces.dtype
        (torch.Size([414, 3]), torch.float32, torch.Size([824, 3]), torch.int64)
        >>> bool(((verts.norm(dim=1) - 0.6).abs() < 0.01).all())  # on the sphere
        True
        >>> marching_cubes(volume, level=2.0)[0].shape  # a level the volume never reaches
        torch.Size([0, 3])
    """
    _check_volume(volume)
    level = _check_level(level)
    origin, spacing = _check_frame(origin, spacing)
    _check_extent(volume, origin, spacing)
    _native.check_backend(volume.device)
    return _dense(volume.contiguous(), level, origin, spacing)


def mesh_field(
    fn: Callable[[torch.Tensor], torch.Tensor],
    bounds: Sequence[Sequence[float]],
    resolution: int | Sequence[int],
    level: float = 0.0,
    *,
    device: str | torch.device = "cpu",
    narrow_band: bool = True,
    batch_size: int = 2**18,
    lipschitz: float = 1.0,
    progress: Callable[[float], object] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mesh the level set ``fn(x) == level`` over a box, sampling the field on a regular grid.

    The grid has ``resolution`` points per axis spanning ``bounds`` (corners included), so the
    result is the :func:`marching_cubes` mesh of the field sampled at
    ``bounds[0] + (i, j, k) * (bounds[1] - bounds[0]) / (resolution - 1)``.

    With ``narrow_band`` (the default) the field is evaluated coarse to fine: the coarsest level
    has ``>= 16`` cells per axis (``resolution - 1`` halved while it stays at least 16, rounding
    up); a cell is kept when its corners change sign or every corner lies within
    ``lipschitz * diagonal`` of the level (x 1.01 for rounding), the only cells that can hold the
    level set when ``|fn(x) - fn(y)| <= lipschitz * |x - y|``; kept cells are split in two per
    axis, and the field is evaluated only at corners not seen before. At the finest level the
    cells whose corners change sign are meshed, welding vertices by global edge. For a field that
    honours the Lipschitz bound (a signed distance has ``lipschitz = 1``) the mesh has the same
    vertices and faces as the dense one, in another order; for one that breaks it, parts of the
    surface may be missing. ``narrow_band=False`` evaluates the whole grid.

    Args:
        fn: maps ``(N, 3)`` float32 points on ``device`` to ``(N,)`` (or ``(N, 1)``) finite values;
            called under ``torch.no_grad()`` with ``N <= batch_size``. float64 values give float64
            vertices, anything else is cast to float32.
        bounds: ``((xmin, ymin, zmin), (xmax, ymax, zmax))``, min < max on every axis.
        resolution: grid points per axis, an integer ``>= 2`` or three of them.
        level: the iso-value.
        device: where points are made, ``fn`` runs and the mesh is built.
        narrow_band: coarse-to-fine evaluation (see above) instead of the full grid.
        batch_size: most points per ``fn`` call.
        lipschitz: the field's Lipschitz bound (narrow band only), a positive number.
        progress: called with the fraction done (0 to 1) as work completes, or None.

    Returns:
        ``verts`` ``(V, 3)`` float32 (float64 if ``fn`` returns float64) and ``faces`` ``(F, 3)``
        int64, on ``device``.

    Example:
        >>> import torch
        >>> from fields3d.geometry import mesh_field
        >>> sphere = lambda p: p.norm(dim=1) - 0.6  # (N, 3) -> (N,), Lipschitz 1
        >>> verts, faces = mesh_field(sphere, ((-1, -1, -1), (1, 1, 1)), resolution=17)
        >>> verts.shape, faces.shape  # the marching_cubes example's mesh, in another order
        (torch.Size([414, 3]), torch.Size([824, 3]))
        >>> dense = mesh_field(sphere, ((-1, -1, -1), (1, 1, 1)), 17, narrow_band=False)
        >>> torch.allclose(verts.sort(dim=0).values, dense[0].sort(dim=0).values)
        True
    """
    lo, hi = _check_bounds(bounds)
    shape = _check_resolution(resolution)
    _check_span(lo, hi, shape)
    level = _check_level(level)
    _check_mesh_options(fn, batch_size, lipschitz, progress)
    device = parse_device(device)
    _native.check_backend(device)
    grid = _Grid(lo, hi, shape, device)
    field = _Field(fn, grid, batch_size)
    report = progress or (lambda fraction: None)
    if narrow_band:
        verts, faces = _narrow_band(field, level, lipschitz, report)
    else:
        volume = field.dense(report)
        verts, faces = _dense(volume, level, grid.origin, grid.spacing)
    report(1.0)
    return verts, faces


# ---- checks ---------------------------------------------------------------------------------------


def _check_volume(volume) -> None:
    want = "volume must be a float32 or float64 tensor of shape (X, Y, Z)"
    if not isinstance(volume, torch.Tensor):
        raise InputError(f"{want}, got {type(volume).__name__}")
    if volume.dtype not in (torch.float32, torch.float64) or volume.dim() != 3:
        raise InputError(f"{want}, got {dtype_str(volume.dtype)} {shape_str(volume.shape)}")
    if min(volume.shape) < 2:
        raise InputError(
            f"volume must have at least 2 points along each axis, got {shape_str(volume.shape)}"
        )


def _check_finite(volume: torch.Tensor) -> None:
    """Raise InputError naming the first NaN or infinite value (the CPU core checks while counting)."""
    if torch.isfinite(volume.sum()):  # one cheap pass; NaN or inf anywhere makes the sum non-finite
        return
    bad = ~torch.isfinite(volume)
    if not bool(bad.any()):  # finite values whose sum overflowed
        return
    index = tuple(int(i) for i in torch.nonzero(bad)[0])
    raise InputError(
        f"volume must be finite, got {float(volume[index])} at {index}; "
        "replace missing values first (e.g. torch.nan_to_num)"
    )


def _check_level(level) -> float:
    if not is_number(level) or not math.isfinite(level):
        raise InputError(f"level must be a finite number, got {level!r}")
    return float(level)


def _numbers3(value) -> tuple[float, ...] | None:
    if is_number(value):
        return (float(value),) * 3
    try:
        items = tuple(value)
    except TypeError:
        return None
    if len(items) != 3 or not all(is_number(v) and math.isfinite(v) for v in items):
        return None
    return tuple(float(v) for v in items)


def _check_frame(origin, spacing) -> tuple[tuple[float, ...], tuple[float, ...]]:
    o = None if is_number(origin) else _numbers3(origin)
    if o is None:
        raise InputError(f"origin must be 3 finite numbers, got {origin!r}")
    s = _numbers3(spacing)
    if s is None or not all(v > 0 for v in s):
        raise InputError(f"spacing must be a positive finite number or 3 of them, got {spacing!r}")
    return o, s


def _range_limit(dtype: torch.dtype) -> float:
    """The largest coordinate magnitude the core may compute in ``dtype``: its finite maximum, less
    1e-6 relative for the roundings of origin, spacing, p, product and sum (each at most 2^-24 in float32)."""
    return torch.finfo(dtype).max * (1 - 1e-6)


def _extent(origin, spacing, shape) -> float:
    """The largest magnitude ``origin + p * spacing`` (p in [0, size - 1]) reaches, or its parts."""
    return max(
        max(abs(o), (n - 1) * s, abs(o + (n - 1) * s)) for o, s, n in zip(origin, spacing, shape)
    )


def _check_extent(volume: torch.Tensor, origin, spacing) -> None:
    """Raise InputError unless the frame's vertices are finite and distinct in the volume's dtype."""
    info, dtype = torch.finfo(volume.dtype), dtype_str(volume.dtype)
    wider = "" if volume.dtype == torch.float64 else " or pass a float64 volume"
    if min(spacing) < info.tiny:
        raise InputError(
            f"spacing must be at least {info.tiny:.4g} on every axis for {dtype} vertices (less loses "
            f"precision or rounds to zero), got {spacing!r}; scale the coordinates up{wider}"
        )
    extent, limit = _extent(origin, spacing, volume.shape), _range_limit(volume.dtype)
    if not extent <= limit:
        raise InputError(
            f"origin and spacing put vertices out of {dtype} range: |origin|, (size - 1) * spacing and "
            f"|origin + (size - 1) * spacing| must be at most {limit:.4g} on every axis, got {extent:.4g} for a "
            f"volume of shape {shape_str(volume.shape)}, origin {origin!r}, spacing {spacing!r}; scale the "
            f"coordinates down{wider}"
        )


def _check_span(lo, hi, shape) -> None:
    """Raise InputError unless the grid over ``lo..hi`` stays within float32 range (points, vertices)."""
    spacing = tuple((h - a) / (n - 1) for a, h, n in zip(lo, hi, shape))
    limit = _range_limit(torch.float32)
    if not _extent(lo, spacing, shape) <= limit:
        raise InputError(
            f"bounds must keep the grid within float32 range (fn gets float32 points): |min|, |max| and max - min "
            f"must be at most {limit:.4g} on every axis, got {(lo, hi)!r}; scale the coordinates down"
        )


def _check_mesh_options(fn, batch_size, lipschitz, progress) -> None:
    if not callable(fn):
        raise InputError(f"fn must be callable, got {type(fn).__name__}")
    check_int("batch_size", batch_size, 1)
    if not is_number(lipschitz) or not (0 < lipschitz < math.inf):
        raise InputError(f"lipschitz must be a positive finite number, got {lipschitz!r}")
    if progress is not None and not callable(progress):
        raise InputError(f"progress must be callable or None, got {type(progress).__name__}")


# ---- the core's passes ----------------------------------------------------------------------------


def _dense(
    volume: torch.Tensor, level: float, origin, spacing
) -> tuple[torch.Tensor, torch.Tensor]:
    c = _native.capsule
    stream = _native.stream_of(volume.device)
    x, y, z = volume.shape
    counts = torch.empty((x * y, 4), dtype=torch.int64, device=volume.device)
    # On the CPU the count pass keeps each row's below-level bits (1/32 of a float32 volume), so
    # the emit pass reads the volume only at crossing edges instead of every row with a vertex.
    below = None
    if volume.device.type == "cpu":
        below = torch.empty((x * y, (z + 63) // 64), dtype=torch.int64)
    if not _core_ops.marching_cubes_count(
        c(volume), level, c(counts), stream, c(below)
    ):  # None: not checked (CUDA)
        _check_finite(volume)
    n_verts, n_faces = _core_ops.marching_cubes_scan(c(counts), 3, stream)
    verts = volume.new_empty((n_verts, 3))
    faces = torch.empty((n_faces, 3), dtype=torch.int64, device=volume.device)
    _core_ops.marching_cubes_emit(
        c(volume), level, origin, spacing, c(counts), c(verts), c(faces), stream, c(below)
    )
    return verts, faces


def _cells_mesh(shape, cells, values, level, origin, spacing) -> tuple[torch.Tensor, torch.Tensor]:
    """Marching cubes on active cells of a ``shape`` grid: ``cells`` ``(M,)`` int64 strictly
    increasing linear cell indices ``(i * (Y-1) + j) * (Z-1) + k``, ``values`` ``(M, 8)`` their
    corner values (corner order of ``cuda/geometry/mc_tables.h``), consistent between cells."""
    c = _native.capsule
    stream = _native.stream_of(values.device)
    shape = [int(s) for s in shape]
    counts = torch.empty((values.shape[0], 4), dtype=torch.int64, device=values.device)
    _core_ops.marching_cubes_sparse_count(shape, c(cells), c(values), level, c(counts), stream)
    n_verts, n_faces = _core_ops.marching_cubes_scan(c(counts), 1, stream)
    verts = values.new_empty((n_verts, 3))
    faces = torch.empty((n_faces, 3), dtype=torch.int64, device=values.device)
    _core_ops.marching_cubes_sparse_emit(
        shape, c(cells), c(values), level, origin, spacing, c(counts), c(verts), c(faces), stream
    )
    if n_faces and int(faces.min()) < 0:
        raise FieldsError("internal error: corner values disagree between neighbouring cells")
    return verts, faces


# ---- fields on a grid ---------------------------------------------------------------------------


class _Grid:
    """``shape`` points per axis from ``lo`` to ``hi``; points addressed by linear index
    ``(i * Y + j) * Z + k``; coordinates ``lo + i * spacing`` computed in float64 once per axis,
    handed to fields as float32 (the same numbers for the dense and the narrow-band paths)."""

    def __init__(self, lo, hi, shape, device: torch.device) -> None:
        self.shape, self.device, self.origin = shape, device, lo
        self.spacing = tuple((h - a) / (n - 1) for a, h, n in zip(lo, hi, shape))
        # Per axis, the coordinate of every grid index: lo + i * spacing in float64, then rounded.
        self._axes = [
            (a + torch.arange(n, dtype=torch.float64, device=device) * d).to(torch.float32)
            for a, n, d in zip(lo, shape, self.spacing)
        ]

    @property
    def n_points(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]

    def point_keys(self, ijk: torch.Tensor) -> torch.Tensor:
        """``(..., 3)`` integer point indices -> ``(...)`` linear keys (same dtype)."""
        return (ijk[..., 0] * self.shape[1] + ijk[..., 1]) * self.shape[2] + ijk[..., 2]

    def cell_keys(self, ijk: torch.Tensor) -> torch.Tensor:
        """``(..., 3)`` int64 cell indices -> ``(...)`` linear cell keys."""
        return (ijk[..., 0] * (self.shape[1] - 1) + ijk[..., 1]) * (self.shape[2] - 1) + ijk[..., 2]

    def positions(self, keys: torch.Tensor) -> torch.Tensor:
        """``(N,)`` linear point keys -> ``(N, 3)`` float32 world positions."""
        y, z = self.shape[1], self.shape[2]
        ij, k = keys.div(z, rounding_mode="floor"), keys.remainder(z)
        i, j = ij.div(y, rounding_mode="floor"), ij.remainder(y)
        return torch.stack((self._axes[0][i], self._axes[1][j], self._axes[2][k]), dim=-1)


def _check_bounds(bounds) -> tuple[tuple[float, ...], tuple[float, ...]]:
    want = "bounds must be ((xmin, ymin, zmin), (xmax, ymax, zmax)) with min < max on every axis"
    try:
        lo, hi = (tuple(b) for b in bounds)
        ok = len(lo) == len(hi) == 3 and all(is_number(v) and math.isfinite(v) for v in lo + hi)
    except (TypeError, ValueError):
        ok = False
    if not ok or not all(a < b for a, b in zip(lo, hi)):
        raise InputError(f"{want}, got {bounds!r}")
    return tuple(float(v) for v in lo), tuple(float(v) for v in hi)


def _check_resolution(resolution) -> tuple[int, int, int]:
    try:
        res = (resolution,) * 3 if is_int(resolution) else tuple(resolution)
    except TypeError:
        res = ()
    if len(res) != 3 or not all(is_int(r) and 2 <= r <= MAX_GRID for r in res):
        raise InputError(
            f"resolution must be an integer from 2 to {MAX_GRID} or 3 such integers, got {resolution!r}"
        )
    return res


class _Field:
    """Evaluates ``fn`` at grid points in batches, under ``torch.no_grad()``."""

    def __init__(self, fn, grid: _Grid, batch_size: int) -> None:
        self.fn, self.grid, self.batch_size = fn, grid, batch_size
        self.dtype: torch.dtype | None = None

    def __call__(self, keys: torch.Tensor) -> torch.Tensor:
        """``(N,)`` linear point keys -> ``(N,)`` values."""
        out = [
            self._batch(keys[s : s + self.batch_size])
            for s in range(0, keys.shape[0], self.batch_size)
        ]
        if not out:
            return torch.empty(0, dtype=self.dtype or torch.float32, device=self.grid.device)
        return torch.cat(out)

    def dense(self, report: Callable[[float], object]) -> torch.Tensor:
        """The field on the whole grid, ``shape`` values."""
        n = self.grid.n_points
        volume = None
        for start in range(0, n, self.batch_size):
            keys = torch.arange(start, min(n, start + self.batch_size), device=self.grid.device)
            values = self._batch(keys)
            if volume is None:
                volume = torch.empty(n, dtype=values.dtype, device=self.grid.device)
            volume[start : start + keys.shape[0]] = values
            report(0.9 * (start + keys.shape[0]) / n)
        return volume.view(self.grid.shape)

    def _batch(self, keys: torch.Tensor) -> torch.Tensor:
        points = self.grid.positions(keys)
        with torch.no_grad():
            values = self.fn(points)
        if not isinstance(values, torch.Tensor) or values.shape not in (
            (len(keys),),
            (len(keys), 1),
        ):
            got = (
                shape_str(values.shape)
                if isinstance(values, torch.Tensor)
                else type(values).__name__
            )
            raise InputError(
                f"fn must return one value per point, shape (N,) or (N, 1), for N = {len(keys)} points, got {got}"
            )
        values = values.reshape(-1).to(self.grid.device)
        if values.dtype != torch.float64:
            values = values.to(torch.float32)
        if self.dtype is None:
            self.dtype = values.dtype
        if not bool(torch.isfinite(values.sum())) and not bool(torch.isfinite(values).all()):
            i = int(torch.nonzero(~torch.isfinite(values))[0])
            where = tuple(round(float(v), 6) for v in points[i])
            raise InputError(f"fn must return finite values, got {float(values[i])} at {where}")
        return values.to(self.dtype)


# ---- narrow band ----------------------------------------------------------------------------------
#
# A level holds cells (K, 3) int64 at a stride (in grid steps) and their corner values (K, 8).
# Cell a spans points min(a * stride + (0 or stride), last) per axis: cells at the far faces are
# cut short. Splitting a kept parent evaluates its 3 x 3 x 3 stencil of points at half the
# stride: the 8 corners are known, the 19 other points are deduplicated between parents and
# evaluated once.

_STENCIL = [(a, b, c) for a in range(3) for b in range(3) for c in range(3)]
_STENCIL_CORNERS = [_STENCIL.index(tuple(2 * v for v in corner)) for corner in _CUBE_CORNERS]
_STENCIL_INNER = [n for n in range(27) if n not in _STENCIL_CORNERS]
# Stencil index of corner c of child h (the child at offset _CUBE_CORNERS[h] in its parent).
_CHILD_CORNERS = [
    [_STENCIL.index(tuple(h + c for h, c in zip(child, corner))) for corner in _CUBE_CORNERS]
    for child in _CUBE_CORNERS
]


def _narrow_band(
    field: _Field, level: float, lipschitz: float, report
) -> tuple[torch.Tensor, torch.Tensor]:
    grid = field.grid
    last = torch.tensor(grid.shape, device=grid.device) - 1  # last point index per axis
    n_ref = max(0, int(math.floor(math.log2(min(grid.shape) - 1) - math.log2(COARSEST_CELLS))))
    stride = 2**n_ref
    cells = _all_cells(last, stride)
    offsets = torch.tensor(_CUBE_CORNERS, device=grid.device)
    values = _evaluate(field, torch.minimum((cells[:, None, :] + offsets) * stride, last))
    step = math.sqrt(sum(s * s for s in grid.spacing))
    for n in range(n_ref):
        bound = (
            BAND_SLACK * lipschitz * stride * step
        )  # |f - level| at any corner of a cell the level set enters
        keep = _sign_change(values, level) | ((values - level).abs().amax(dim=1) <= bound)
        stride //= 2
        cells, values = _split(field, cells[keep], values[keep], stride, last)
        report(0.9 * (n + 1) / (n_ref + 1))
    cut = _sign_change(values, level)
    keys, order = torch.sort(grid.cell_keys(cells[cut]))
    report(0.95)
    return _cells_mesh(
        grid.shape, keys, values[cut][order].contiguous(), level, grid.origin, grid.spacing
    )


def _all_cells(last: torch.Tensor, stride: int) -> torch.Tensor:
    """``(K, 3)`` int64 coordinates of every cell at ``stride`` (cells covering the grid)."""
    counts = [-(-int(n) // stride) for n in last.tolist()]
    axes = [torch.arange(n, device=last.device) for n in counts]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def _evaluate(field: _Field, points: torch.Tensor) -> torch.Tensor:
    """Values at ``(..., 3)`` grid points, each distinct point evaluated once."""
    if field.grid.n_points < 2**31:  # int32 keys sort about twice as fast
        points = points.to(torch.int32)
    keys, inverse = torch.unique(field.grid.point_keys(points), return_inverse=True)
    return field(keys.long())[inverse]


def _split(field, parents, parent_values, stride, last) -> tuple[torch.Tensor, torch.Tensor]:
    """The children (at ``stride``) of ``parents`` (at twice it) that start inside the grid, with
    their corner values: ``(C, 3)`` cells and ``(C, 8)`` values."""
    dev = parents.device
    stencil = torch.tensor(_STENCIL, device=dev)
    values = parent_values.new_empty((parents.shape[0], 27))
    values[:, _STENCIL_CORNERS] = parent_values
    inner = stencil[_STENCIL_INNER]
    values[:, _STENCIL_INNER] = _evaluate(
        field, torch.minimum((2 * parents[:, None, :] + inner) * stride, last)
    )
    children = (2 * parents[:, None, :] + torch.tensor(_CUBE_CORNERS, device=dev)).reshape(-1, 3)
    child_values = values[:, torch.tensor(_CHILD_CORNERS, device=dev)].reshape(-1, 8)
    inside = (children * stride < last).all(dim=1)
    return children[inside], child_values[inside]


def _sign_change(corner_values: torch.Tensor, level: float) -> torch.Tensor:
    below = corner_values <= torch.tensor(level, dtype=corner_values.dtype)
    return below.any(dim=1) & ~below.all(dim=1)
