"""Evaluation of the RBF encoding over given neighbours: the torch form and the fused core op.

:func:`rbf_evaluate` is plain differentiable torch over the ``(N, K)`` gathered neighbours (it
allocates ``N x K x D`` and ``N x K x F`` intermediates); :func:`rbf_evaluate_fused` computes the
same values with the core's fused kernel (``cuda/encodings/rbf_eval.h``, CPU and CUDA), one pass
over the points with no intermediates. Its first derivatives are the core's backward, itself an
autograd op (:class:`_Backward`) whose backward is the core's double backward
(``cuda/encodings/rbf_eval_backward2.h``): a backward run with ``create_graph=True`` (e.g. an
eikonal loss) stays fused for the incoming gradients of dx, dcenters and dweights. The one case
the core does not cover, an incoming gradient of dshapes (a loss on the shapes' gradient),
recomputes that call through :func:`rbf_evaluate` and differentiates it with torch. Derivatives
of third order are not supported (the double backward is once differentiable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.autograd.function import once_differentiable

from .. import _core_ops, _native
from ._table_op import engine_uses as _engine_uses

if TYPE_CHECKING:
    from .rbf import RBFConfig


def _radius2(
    diff: torch.Tensor, shapes: torch.Tensor, idx: torch.Tensor, shape: str
) -> torch.Tensor:
    """``|A_j (x - c_j)|^2`` for ``diff = x - c_j`` (N, K, D) and neighbour indices (N, K)."""
    if shape == "isotropic":
        return shapes[idx].square() * diff.square().sum(-1)
    if shape == "diagonal":
        return (shapes[idx] * diff).square().sum(-1)
    return (torch.tril(shapes)[idx] @ diff.unsqueeze(-1)).squeeze(-1).square().sum(-1)


def rbf_evaluate(
    x: torch.Tensor,
    idx: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    config: RBFConfig,
) -> torch.Tensor:
    """The encoding at finite points ``x`` (N, D) over given neighbours ``idx`` (N, K) int64 -> ``(N, F)``.

    Plain torch, differentiable (twice) w.r.t. ``x``, ``centers``, ``shapes`` and ``weights``; no checks.
    """
    diff = x.unsqueeze(1) - centers[idx]  # (N, K, D)
    r2 = _radius2(diff, shapes, idx, config.shape)
    phi = 1.0 / (1.0 + r2) if config.kernel == "inverse_quadratic" else torch.exp(-r2)
    omega = config.channel_frequencies(x)
    basis = (
        phi.unsqueeze(-1) if omega is None else torch.sin(phi.unsqueeze(-1) * omega)
    )  # (N, K, 1 or F)
    return (basis * weights[idx]).sum(dim=1)


def rbf_evaluate_fused(
    x: torch.Tensor,
    idx: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    config: RBFConfig,
    *,
    check_idx: bool = True,
) -> torch.Tensor:
    """:func:`rbf_evaluate` by the core's fused kernel: same arguments, same ``(N, F)`` result.

    ``x`` finite, in the parameters' dtype and device (float32, or float64 on the CPU); ``idx``
    int64 in ``[0, M)`` on their device (the core checks both, raising ValueError; the range check
    reads ``idx`` and on CUDA synchronises the stream, so ``check_idx=False`` skips it for indices
    that come from :func:`~fields3d.geometry.knn.knn`; the backward passes never repeat
    it: autograd refuses a saved ``idx`` changed in place). Differentiable
    twice w.r.t. ``x``, ``centers``, ``shapes`` and ``weights``: first and second derivatives by
    the core (second derivatives through the shapes' gradient by torch; see the module doc).
    """
    return _FusedEval.apply(
        x.contiguous(),
        centers.contiguous(),
        shapes.contiguous(),
        weights.contiguous(),
        idx.contiguous(),
        config,
        check_idx,
    )


def _freqs(config: RBFConfig, like: torch.Tensor) -> torch.Tensor | None:
    """The ``(L,)`` frequencies in ``like``'s dtype and device; None for plain features."""
    if not config.frequencies:
        return None
    return torch.tensor(config.frequencies, dtype=like.dtype, device=like.device)


class _FusedEval(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, centers, shapes, weights, idx, config, check_idx):
        y = x.new_empty((x.shape[0], weights.shape[1]))
        c = _native.capsule
        _core_ops.rbf_eval_forward(
            c(x),
            c(idx),
            c(centers),
            c(shapes),
            c(weights),
            c(_freqs(config, x)),
            config.shape,
            config.kernel,
            c(y),
            check_idx,
            _native.stream_of(x.device),
        )
        ctx.save_for_backward(x, centers, shapes, weights, idx)
        ctx.config = config
        return y

    @staticmethod
    def backward(ctx, dy):
        x, centers, shapes, weights, idx = ctx.saved_tensors
        inputs = (x, centers, shapes, weights)
        needs = _engine_uses(inputs, ctx.needs_input_grad[:4])
        if not any(needs):
            grads = [None] * 4
        elif torch.is_grad_enabled():  # create_graph=True: the gradients must be differentiable
            grads = _Backward.apply(dy.contiguous(), *inputs, idx, ctx.config, tuple(needs))
        else:
            grads = _core_grads(dy.contiguous(), inputs, needs, idx, ctx.config)
        return (*grads, None, None, None)


class _Backward(torch.autograd.Function):
    """The first backward as a differentiable op: (dy, x, centers, shapes, weights) -> (dx,
    dcenters, dshapes, dweights), those not in ``needs`` None."""

    @staticmethod
    def forward(ctx, dy, x, centers, shapes, weights, idx, config, needs):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(dy, x, centers, shapes, weights, idx)
        ctx.config = config
        return tuple(_core_grads(dy, (x, centers, shapes, weights), needs, idx, config))

    @staticmethod
    @once_differentiable
    def backward(ctx, ddx, ddcenters, ddshapes, ddweights):
        dy, *inputs, idx = ctx.saved_tensors
        needs = _engine_uses((dy, *inputs), ctx.needs_input_grad[:5])
        incoming = (ddx, ddcenters, ddshapes, ddweights)
        if not any(needs) or all(t is None for t in incoming):
            grads = [None] * 5
        elif ddshapes is not None:  # not in the core: differentiate the torch form
            grads = _graph_double_grads(dy, inputs, incoming, needs, idx, ctx.config)
        else:
            grads = _core_double_grads(dy, inputs, incoming, needs, idx, ctx.config)
        return (*grads, None, None, None)


def _core_grads(dy, inputs, needs, idx, config) -> list:
    x, centers, shapes, weights = inputs
    grads = [
        torch.empty_like(t) if need else None for t, need in zip(inputs, needs)
    ]  # the core zeroes them
    c = _native.capsule
    _core_ops.rbf_eval_backward(
        c(x),
        c(idx),
        c(centers),
        c(shapes),
        c(weights),
        c(_freqs(config, x)),
        config.shape,
        config.kernel,
        c(dy),
        *(c(g) for g in grads),
        False,
        _native.stream_of(x.device),  # idx: checked by the forward
    )
    return grads


def _core_double_grads(dy, inputs, incoming, needs, idx, config) -> list:
    """Gradients w.r.t. (dy, x, centers, shapes, weights) of sum(ddx * dx) + sum(ddcenters *
    dcenters) + sum(ddweights * dweights), by the core (``incoming``'s ddshapes is None)."""
    x, centers, shapes, weights = inputs
    ddx, ddcenters, _, ddweights = (None if t is None else t.contiguous() for t in incoming)
    needs = list(needs)
    needs[4] = needs[4] and (
        ddx is not None or ddcenters is not None
    )  # ddweights alone: no weight term
    grads = [torch.empty_like(t) if need else None for t, need in zip((dy, *inputs), needs)]
    if not any(needs):
        return grads
    c = _native.capsule
    _core_ops.rbf_eval_backward_backward(
        c(x),
        c(idx),
        c(centers),
        c(shapes),
        c(weights),
        c(_freqs(config, x)),
        config.shape,
        config.kernel,
        c(dy),
        c(ddx),
        c(ddcenters),
        c(ddweights),
        *(c(g) for g in grads),
        False,  # idx: checked by the forward
        _native.stream_of(x.device),
    )
    return grads


def _graph_double_grads(dy, inputs, incoming, needs, idx, config) -> list:
    """The same gradients by torch: the first derivatives recomputed with a graph through
    :func:`rbf_evaluate`, then differentiated (any incoming gradient, ddshapes included)."""
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_() for t in (dy, *inputs)]
        y = rbf_evaluate(leaves[1], idx, *leaves[2:], config)
        given = [i for i, t in enumerate(incoming) if t is not None]
        firsts = torch.autograd.grad(
            y, [leaves[1 + i] for i in given], leaves[0], create_graph=True
        )
        wanted = [t for t, need in zip(leaves, needs) if need]
        got = iter(
            torch.autograd.grad(firsts, wanted, [incoming[i] for i in given], allow_unused=True)
        )
    return [next(got) if need else None for need in needs]
