"""The compiled core ``fields3d._core``, function by function: the one place Python calls it.

Every function the core exports has one thin wrapper here, named exactly like its binding and
taking the binding's arguments, so a reader greps from a caller to ``cuda/bindings/``, and from a
binding to every caller. The core is loaded on the first call, never at import time; a missing
build raises BackendUnavailable saying how to build it. Loading it also makes glibc keep freed
memory for reuse (:mod:`fields3d._memory`; ``FIELDS3D_KEEP_FREED_MEMORY=0`` opts out). Tensors cross as DLPack capsules
(:func:`fields3d._native.capsule`) and CUDA work runs on the ``stream`` handle given
(:func:`fields3d._native.stream_of`); each binding checks every tensor's dtype, shape, device and
strides again before memory is touched, raising ValueError.

tests/test_core_ops.py checks that this module wraps exactly the functions the core exports, with
the binding's argument names, and that no other module under ``fields3d/`` reaches into the core.
"""

from __future__ import annotations

import functools
from types import ModuleType

from ._memory import keep_freed_memory
from .errors import BackendUnavailable


@functools.lru_cache(maxsize=1)
def core() -> ModuleType:
    """The compiled core module; raises BackendUnavailable if it is not built."""
    try:
        from . import _core  # type: ignore[attr-defined]
    except ImportError as exc:
        raise BackendUnavailable(
            f"the compiled core fields3d._core could not be loaded ({exc}); "
            "install the package with `pip install -e .` (it builds the C++ core), or run `make setup`"
        ) from exc
    keep_freed_memory()  # fresh pages for each step's large tensors cost more than our kernels
    return _core


# ---- the build (cuda/bindings/module.cpp) ----------------------------------------------------


def build_info() -> dict:
    """Version, compiler and compiled backends of this build (``cuda``, ``cuda_archs``, ...)."""
    return core().build_info()


def cuda_device_count() -> int:
    """CUDA devices this build can use (0 without CUDA)."""
    return core().cuda_device_count()


def num_threads() -> int:
    """Threads the CPU kernels use."""
    return core().num_threads()


def set_num_threads(n):
    """Set the CPU kernels' thread count."""
    return core().set_num_threads(n)


# ---- lattice encodings (cuda/bindings/lattice.cpp, cuda/encodings/lattice.h) -----------------


def LatticeLayout(
    kind, n_dims, n_features, interpolation, scales, resolutions, sizes, hashed, axes
):
    """The checked table layout of a lattice encoding (kind ``hash``, ``dense``, ``triplane`` or
    ``simplex``); per level: scale, resolution, rows, hashed, plane axes."""
    return core().LatticeLayout(
        kind, n_dims, n_features, interpolation, scales, resolutions, sizes, hashed, axes
    )


def lattice_forward(layout, x, table, y, stream=0, lut=None):
    """y (N, L*F) = encoding of x (N, D) with table (n_entries, F)."""
    return core().lattice_forward(layout, x, table, y, stream, lut)


def lattice_backward(layout, x, table, dy, dx, dtable, stream=0, lut=None):
    """Writes dx (N, D) and dtable (n_entries, F); either may be None."""
    return core().lattice_backward(layout, x, table, dy, dx, dtable, stream, lut)


def lattice_backward_backward(
    layout, x, table, dy, ddx, ddtable, ddy, dx, dtable, stream=0, lut=None
):
    """Gradients of the backward pass: writes ddy, dx and dtable; None skips an input/output."""
    return core().lattice_backward_backward(
        layout, x, table, dy, ddx, ddtable, ddy, dx, dtable, stream, lut
    )


# ---- RBF evaluation (cuda/bindings/rbf_eval.cpp, cuda/encodings/rbf_eval.h) ------------------


def rbf_eval_forward(
    x, idx, centers, shapes, weights, freqs, shape, kernel, y, check_idx=True, stream=0
):
    """Writes y (N, F): the RBF encoding of x (N, D) over its neighbours idx (N, K)."""
    return core().rbf_eval_forward(
        x, idx, centers, shapes, weights, freqs, shape, kernel, y, check_idx, stream
    )


def rbf_eval_backward(
    x,
    idx,
    centers,
    shapes,
    weights,
    freqs,
    shape,
    kernel,
    dy,
    dx,
    dcenters,
    dshapes,
    dweights,
    check_idx=True,
    stream=0,
):
    """Backward of rbf_eval_forward for dy (N, F): overwrites dx, dcenters, dshapes, dweights."""
    return core().rbf_eval_backward(
        x,
        idx,
        centers,
        shapes,
        weights,
        freqs,
        shape,
        kernel,
        dy,
        dx,
        dcenters,
        dshapes,
        dweights,
        check_idx,
        stream,
    )


def rbf_eval_backward_backward(
    x,
    idx,
    centers,
    shapes,
    weights,
    freqs,
    shape,
    kernel,
    dy,
    ddx,
    ddcenters,
    ddweights,
    ddy,
    gx,
    gcenters,
    gshapes,
    gweights,
    check_idx=True,
    stream=0,
):
    """Double backward of rbf_eval_forward: overwrites ddy, gx, gcenters, gshapes, gweights."""
    return core().rbf_eval_backward_backward(
        x,
        idx,
        centers,
        shapes,
        weights,
        freqs,
        shape,
        kernel,
        dy,
        ddx,
        ddcenters,
        ddweights,
        ddy,
        gx,
        gcenters,
        gshapes,
        gweights,
        check_idx,
        stream,
    )


# ---- neighbour search (cuda/bindings/knn.cpp, cuda/geometry/knn.h) --------------------------


def knn_grid_shape(lo, hi, n_centers, k):
    """(cell, resolution) of a uniform grid over the box [lo, hi], about k centers per cell."""
    return core().knn_grid_shape(lo, hi, n_centers, k)


def knn(centers, points, k, origin, cell, resolution, cell_start, order, indices, dist2, stream=0):
    """K nearest centers (M, D) of points (N, D): writes the grid (cell_start, order) and
    indices (N, k) / dist2 (N, k), nearest first."""
    return core().knn(
        centers, points, k, origin, cell, resolution, cell_start, order, indices, dist2, stream
    )


# ---- marching cubes (cuda/bindings/marching_cubes.cpp, cuda/geometry/marching_cubes.h) -------


def marching_cubes_count(volume, level, counts, stream=0, below=None):
    """Pass 1 on volume (X, Y, Z): counts (X*Y, 4) int64; whether every value is finite (CPU).
    ``below``: None, or on the CPU an int64 (X*Y, ceil(Z/64)) buffer it fills for the emit pass."""
    return core().marching_cubes_count(volume, level, counts, stream, below)


def marching_cubes_scan(counts, n_vert_cols, stream=0):
    """Turns counts (N, 4) int64 into exclusive offsets in place; returns (n_verts, n_faces)."""
    return core().marching_cubes_scan(counts, n_vert_cols, stream)


def marching_cubes_emit(
    volume, level, origin, spacing, offsets, verts, faces, stream=0, below=None
):
    """Pass 2: writes verts (V, 3) (the volume's dtype) and faces (F, 3) int64; ``below``: the count
    pass's buffer (the volume is then read only at crossing edges) or None."""
    return core().marching_cubes_emit(
        volume, level, origin, spacing, offsets, verts, faces, stream, below
    )


def marching_cubes_sparse_count(shape, cells, values, level, counts, stream=0):
    """Pass 1 on active cells (M,) int64 with corner values (M, 8): counts (M, 4) int64."""
    return core().marching_cubes_sparse_count(shape, cells, values, level, counts, stream)


def marching_cubes_sparse_emit(
    shape, cells, values, level, origin, spacing, offsets, verts, faces, stream=0
):
    """Pass 2 on active cells: writes verts (V, 3) and faces (F, 3)."""
    return core().marching_cubes_sparse_emit(
        shape, cells, values, level, origin, spacing, offsets, verts, faces, stream
    )


# ---- ray marching (cuda/bindings/march.cpp, cuda/render/march.h) -----------------------------


def march_count(
    origins,
    dirs,
    nears,
    fars,
    bits,
    levels,
    resolution,
    center,
    half,
    step,
    cone,
    max_step,
    counts,
    stream=0,
):
    """Pass 1: counts (R,) int64 <- samples of each ray through the packed occupancy bits."""
    return core().march_count(
        origins,
        dirs,
        nears,
        fars,
        bits,
        levels,
        resolution,
        center,
        half,
        step,
        cone,
        max_step,
        counts,
        stream,
    )


def march_emit(
    origins,
    dirs,
    nears,
    fars,
    bits,
    levels,
    resolution,
    center,
    half,
    step,
    cone,
    max_step,
    offsets,
    t_starts,
    t_ends,
    ray_ids,
    stream=0,
):
    """Pass 2: writes each ray's samples to t_starts, t_ends (S,) and ray_ids (S,)."""
    return core().march_emit(
        origins,
        dirs,
        nears,
        fars,
        bits,
        levels,
        resolution,
        center,
        half,
        step,
        cone,
        max_step,
        offsets,
        t_starts,
        t_ends,
        ray_ids,
        stream,
    )


# ---- compositing (cuda/bindings/composite.cpp, cuda/render/composite.h) ----------------------


def composite_forward(
    sigmas, t_starts, t_ends, values, offsets, t_min, out, opacity, weights, trans, stream=0
):
    """Composites packed samples (S,) with values (S, C) into out (R, C), opacity (R,), weights
    and trans (S,)."""
    return core().composite_forward(
        sigmas, t_starts, t_ends, values, offsets, t_min, out, opacity, weights, trans, stream
    )


def composite_backward(
    sigmas,
    t_starts,
    t_ends,
    values,
    offsets,
    t_min,
    out,
    opacity,
    weights,
    trans,
    g_out,
    g_opacity,
    g_weights,
    g_sigmas,
    g_values,
    stream=0,
):
    """Gradients of compositing: g_sigmas (S,) and g_values (S, C), from the forward's outputs."""
    return core().composite_backward(
        sigmas,
        t_starts,
        t_ends,
        values,
        offsets,
        t_min,
        out,
        opacity,
        weights,
        trans,
        g_out,
        g_opacity,
        g_weights,
        g_sigmas,
        g_values,
        stream,
    )
