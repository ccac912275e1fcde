"""Evaluation of the RBF encoding over given neighbours: the torch form and the fused core op.

:func:`rbf_evaluate` is plain differentiable torch over the ``(N, K)`` gathered neighbours (it
allocates ``N x K x D`` and ``N x K x F`` intermediates); :func:`rbf_evaluate_fused` computes the
same values with the core's fused kernel (``cuda/encodings/rbf_eval.h``, CPU and CUDA), one pass
over the points with no intermediates. Its first derivatives are the core's backward. A backward
run with ``create_graph=True`` (double backward, e.g. an eikonal loss) instead recomputes the
encoding through :func:`rbf_evaluate` and differentiates that with ``create_graph=True``, so second
derivatives are torch's, exact, at the torch path's cost; only first-order training gets the
fused backward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .. import _native

if TYPE_CHECKING:
    from .rbf import RBFConfig


def _radius2(diff: torch.Tensor, shapes: torch.Tensor, idx: torch.Tensor, shape: str) -> torch.Tensor:
    """``|A_j (x - c_j)|^2`` for ``diff = x - c_j`` (N, K, D) and neighbour indices (N, K)."""
    if shape == "isotropic":
        return shapes[idx].square() * diff.square().sum(-1)
    if shape == "diagonal":
        return (shapes[idx] * diff).square().sum(-1)
    return (torch.tril(shapes)[idx] @ diff.unsqueeze(-1)).squeeze(-1).square().sum(-1)


def rbf_evaluate(
    x: torch.Tensor, idx: torch.Tensor, centers: torch.Tensor, shapes: torch.Tensor, weights: torch.Tensor,
    config: RBFConfig,
) -> torch.Tensor:
    """The encoding at finite points ``x`` (N, D) over given neighbours ``idx`` (N, K) int64 -> ``(N, F)``.

    Plain torch, differentiable (twice) w.r.t. ``x``, ``centers``, ``shapes`` and ``weights``; no checks.
    """
    diff = x.unsqueeze(1) - centers[idx]  # (N, K, D)
    r2 = _radius2(diff, shapes, idx, config.shape)
    phi = 1.0 / (1.0 + r2) if config.kernel == "inverse_quadratic" else torch.exp(-r2)
    omega = config.channel_frequencies(x)
    basis = phi.unsqueeze(-1) if omega is None else torch.sin(phi.unsqueeze(-1) * omega)  # (N, K, 1 or F)
    return (basis * weights[idx]).sum(dim=1)


def rbf_evaluate_fused(
    x: torch.Tensor, idx: torch.Tensor, centers: torch.Tensor, shapes: torch.Tensor, weights: torch.Tensor,
    config: RBFConfig,
) -> torch.Tensor:
    """:func:`rbf_evaluate` by the core's fused kernel: same arguments, same ``(N, F)`` result.

    ``x`` finite, in the parameters' dtype and device (float32, or float64 on the CPU); ``idx``
    int64 in ``[0, M)`` on their device (the core checks both, raising ValueError). Differentiable
    w.r.t. ``x``, ``centers``, ``shapes`` and ``weights``: first derivatives by the core's
    backward, second derivatives by torch through :func:`rbf_evaluate` (see the module doc).
    """
    return _FusedEval.apply(x.contiguous(), centers.contiguous(), shapes.contiguous(), weights.contiguous(),
                            idx.contiguous(), config)


def _freqs(config: RBFConfig, like: torch.Tensor) -> torch.Tensor | None:
    """The ``(L,)`` frequencies in ``like``'s dtype and device; None for plain features."""
    if not config.frequencies:
        return None
    return torch.tensor(config.frequencies, dtype=like.dtype, device=like.device)


class _FusedEval(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, centers, shapes, weights, idx, config):
        y = x.new_empty((x.shape[0], weights.shape[1]))
        c = _native.capsule
        _native.core().rbf_eval_forward(
            c(x), c(idx), c(centers), c(shapes), c(weights), c(_freqs(config, x)), config.shape, config.kernel,
            c(y), _native.stream_of(x.device),
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
            grads = _graph_grads(dy, inputs, needs, idx, ctx.config)
        else:
            grads = _core_grads(dy.contiguous(), inputs, needs, idx, ctx.config)
        return (*grads, None, None)


def _core_grads(dy, inputs, needs, idx, config) -> list:
    x, centers, shapes, weights = inputs
    grads = [torch.empty_like(t) if need else None for t, need in zip(inputs, needs)]  # the core zeroes them
    c = _native.capsule
    _native.core().rbf_eval_backward(
        c(x), c(idx), c(centers), c(shapes), c(weights), c(_freqs(config, x)), config.shape, config.kernel,
        c(dy), *(c(g) for g in grads), _native.stream_of(x.device),
    )
    return grads


def _engine_uses(inputs, needs) -> list[bool]:
    """Of the inputs that require grad, those whose gradient this backward pass will use.

    ``needs_input_grad`` says which inputs require grad, not which gradients were asked for: an
    eikonal loss takes ``torch.autograd.grad(y, x, create_graph=True)`` while the parameters also
    require grad, and building graphs for their unused gradients made that step 25% slower (the
    fused backward likewise skips the parameters' scatter under ``grad(y, x)``). The
    engine knows (torch's own ``register_multi_grad_hook`` asks it the same way); where it cannot
    say (a leaf under ``autograd.grad``, or a torch without the query), the input counts as used.
    """
    return [need and _engine_runs(t) for t, need in zip(inputs, needs)]


def _engine_runs(t: torch.Tensor) -> bool:
    will_run = getattr(torch._C, "_will_engine_execute_node", None)
    try:
        return will_run is None or bool(will_run(torch.autograd.graph.get_gradient_edge(t).node))
    except RuntimeError:
        return True


def _graph_grads(dy, inputs, needs, idx, config) -> list:
    """First derivatives with a graph: recompute through the torch form and differentiate it."""
    wanted = [t for t, need in zip(inputs, needs) if need]
    with torch.enable_grad():
        y = rbf_evaluate(inputs[0], idx, *inputs[1:], config)
        got = iter(torch.autograd.grad(y, wanted, dy, create_graph=True))
    return [next(got) if need else None for need in needs]
