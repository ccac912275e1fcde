"""Autograd plumbing shared by the lattice encodings (hash grid, dense grid, tri-plane, simplex
grid: see :mod:`._lattice`).

Each of them runs the core's ``lattice_forward / _backward / _backward_backward`` over its
``LatticeLayout`` and a ``(n_entries, F)`` table; :func:`encode_table` wraps them as a function that is
differentiable twice w.r.t. positions and table (the backward is itself an autograd op whose
backward is the core's double backward). :func:`check_inputs` gives every encoding the same
argument errors, from the generic checks of :mod:`fields3d._checks`.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .. import _core_ops, _native
from .._checks import check_dense, dtype_str, shape_str
from ..errors import InputError


def check_inputs(x, params, *, n_dims: int, n_entries: int, n_features: int, name: str) -> None:
    """Raise InputError unless positions ``x`` (N, n_dims) and ``params`` (n_entries, n_features)
    suit each other and the core; ``name`` ("hash grid", "dense grid", ...) appears in messages."""
    if not isinstance(params, torch.Tensor) or params.dtype not in (torch.float32, torch.float64):
        got = dtype_str(params.dtype) if isinstance(params, torch.Tensor) else type(params).__name__
        raise InputError(f"params must be a float32 or float64 tensor, got {got}")
    check_dense("params", params)
    if tuple(params.shape) != (n_entries, n_features):
        raise InputError(
            f"params must have shape ({n_entries}, {n_features}) for this config, got {shape_str(params)}"
        )
    want = f"positions must be {dtype_str(params.dtype)} of shape (N, {n_dims})"
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{want}, got {type(x).__name__}")
    check_dense("positions", x)
    if x.dtype != params.dtype or x.dim() != 2 or x.shape[1] != n_dims:
        raise InputError(f"{want}, got {dtype_str(x.dtype)} {shape_str(x)}")
    if x.device != params.device:
        raise InputError(
            f"positions must be on {params.device} like the {name}'s parameters, got {x.device}; "
            "move one of them with .to(device)"
        )
    if x.device.type == "cuda" and x.dtype != torch.float32:
        raise InputError(
            f"CUDA {name} kernels take float32, got {dtype_str(x.dtype)}; use float64 on the CPU only"
        )
    _native.check_backend(x.device)


def encode_table(
    x: torch.Tensor, table: torch.Tensor, layout, lut: torch.Tensor | None = None
) -> torch.Tensor:
    """``(N, D)`` positions -> ``(N, layout.n_levels * F)`` features through the core's lattice
    kernels for ``layout`` (a ``LatticeLayout``); inputs already checked. ``lut``: the layout's row
    lookup (int64, on x's device) where it has one (the simplex grid's direct levels)."""
    return _Encode.apply(x.contiguous(), table.contiguous(), layout, lut)


class _Encode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, table, layout, lut):
        y = x.new_empty((x.shape[0], layout.n_levels * table.shape[1]))
        c = _native.capsule
        _core_ops.lattice_forward(
            layout, c(x), c(table), c(y), _native.stream_of(x.device), lut=c(lut)
        )
        ctx.save_for_backward(x, table)
        ctx.layout, ctx.lut = layout, lut
        return y

    @staticmethod
    def backward(ctx, dy):
        x, table = ctx.saved_tensors
        need_x, need_table = engine_uses((x, table), ctx.needs_input_grad[:2])
        if not (need_x or need_table):
            return None, None, None, None
        dx, dtable = _Backward.apply(
            dy.contiguous(), x, table, ctx.layout, ctx.lut, need_x, need_table
        )
        return dx, dtable, None, None


class _Backward(torch.autograd.Function):
    """The backward pass as a differentiable op: (dy, x, table) -> (dx, dtable)."""

    @staticmethod
    def forward(ctx, dy, x, table, layout, lut, need_x, need_table):
        ctx.set_materialize_grads(False)
        dx = torch.empty_like(x) if need_x else None
        dtable = torch.empty_like(table) if need_table else None  # the core zeroes it
        c = _native.capsule
        _core_ops.lattice_backward(
            layout, c(x), c(table), c(dy), c(dx), c(dtable), _native.stream_of(x.device), lut=c(lut)
        )
        ctx.save_for_backward(dy, x, table)
        ctx.layout, ctx.lut = layout, lut
        return dx, dtable

    @staticmethod
    @once_differentiable
    def backward(ctx, ddx, ddtable):
        dy, x, table = ctx.saved_tensors
        need_dy, need_x, need_table = ctx.needs_input_grad[:3]
        none = (None,) * 4
        if ddx is None and ddtable is None:
            return (None, None, None, *none)
        ddx = None if ddx is None else ddx.contiguous()
        ddtable = None if ddtable is None else ddtable.contiguous()
        ddy = torch.empty_like(dy) if need_dy else None
        gx = torch.empty_like(x) if need_x else None
        gtable = torch.empty_like(table) if need_table and ddx is not None else None
        c = _native.capsule
        _core_ops.lattice_backward_backward(
            ctx.layout,
            c(x),
            c(table),
            c(dy),
            c(ddx),
            c(ddtable),
            c(ddy),
            c(gx),
            c(gtable),
            _native.stream_of(x.device),
            lut=c(ctx.lut),
        )
        return (ddy, gx, gtable, *none)


def engine_uses(inputs, needs) -> list[bool]:
    """Of the inputs that require grad, those whose gradient this backward pass will use.

    ``needs_input_grad`` says which inputs require grad, not which gradients were asked for: an
    eikonal loss takes ``torch.autograd.grad(y, x, create_graph=True)`` while the parameters also
    require grad: computing their gradient there (the lattice encodings' scatter into the table,
    the RBF's graphs) is work autograd then drops. The
    engine knows (torch's own ``register_multi_grad_hook`` asks it the same way); where it cannot
    say (a leaf under ``autograd.grad``, or a torch without the query), the input counts as used.
    """
    return [need and engine_runs(t) for t, need in zip(inputs, needs)]


def engine_runs(t: torch.Tensor) -> bool:
    will_run = getattr(torch._C, "_will_engine_execute_node", None)
    try:
        return will_run is None or bool(will_run(torch.autograd.graph.get_gradient_edge(t).node))
    except RuntimeError:
        return True
