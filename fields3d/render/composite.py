"""Volume-rendering compositing of packed samples (the layout of :mod:`fields3d.render.march`).

For sample ``s`` of a ray with density ``sigma_s`` over ``[t_start, t_end]``:
``alpha_s = 1 - exp(-sigma_s (t_end - t_start))``, transmittance ``T_s = prod_{j<s} (1 - alpha_j)``
and weight ``w_s = T_s alpha_s``. A ray accumulates ``sum_s w_s v_s`` over any number of value
channels (colour, depth, normals...) and its opacity ``sum_s w_s``. Once ``T`` falls below
``t_min`` the ray stops (later samples get weight 0 and no gradient: the same rule forward and
backward). Forward and backward run in the core (``cuda/render/composite.h``), one walk per ray;
the backward reads the forward's weights and transmittances instead of recomputing them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _core_ops, _native
from .._checks import dtype_str, shape_str
from ..errors import InputError
from ._tensors import check_float
from .march import RaySamples

DEFAULT_T_MIN = 1e-4


@dataclass
class Composited:
    """Per-ray sums and per-sample weights of one compositing call (R rays, S samples), in the
    dtype and on the device of the values.

    Example:
        >>> import torch
        >>> from fields3d.render import composite
        >>> res = composite(
        ...     torch.tensor([1.0, 1.0]),  # sigmas (S,)
        ...     torch.ones(2, 3),  # values (S, C)
        ...     torch.tensor([0.0, 1.0]),  # t_starts (S,)
        ...     torch.tensor([1.0, 2.0]),  # t_ends (S,)
        ...     torch.tensor([0, 2]),  # offsets (R + 1,): one ray holding both samples
        ... )
        >>> [tuple(t.shape) for t in (res.out, res.opacity, res.weights, res.trans)]
        [(1, 3), (1,), (2,), (2,)]
        >>> res.trans  # exp(-0), exp(-1)
        tensor([1.0000, 0.3679])
    """

    out: torch.Tensor  # (R, C) sum_s w_s v_s
    opacity: torch.Tensor  # (R,) sum_s w_s = 1 - final transmittance
    weights: torch.Tensor  # (S,)
    trans: (
        torch.Tensor
    )  # (S,) transmittance before each sample (0 after the ray stopped); no gradient


def _check(sigmas, values, t_starts, t_ends, offsets, t_min, check_offsets: bool = True) -> None:
    check_float("sigmas", sigmas, (-1,))
    n = sigmas.shape[0]
    check_float("values", values, (n, -1), sigmas)
    check_float("t_starts", t_starts, (n,), sigmas)
    check_float("t_ends", t_ends, (n,), sigmas)
    if (
        not isinstance(offsets, torch.Tensor)
        or offsets.dtype != torch.int64
        or offsets.dim() != 1
        or len(offsets) < 1
    ):
        is_tensor = isinstance(offsets, torch.Tensor)
        got = (
            f"{dtype_str(offsets.dtype)} {shape_str(offsets)}"
            if is_tensor
            else type(offsets).__name__
        )
        raise InputError(
            f"offsets must be an int64 tensor of shape (R + 1,) (as march_rays makes them), got {got}"
        )
    if offsets.device != sigmas.device:
        raise InputError(f"offsets must be on {sigmas.device} like sigmas, got {offsets.device}")
    if not isinstance(t_min, (int, float)) or not 0 <= t_min < 1:
        raise InputError(f"t_min must be a number in [0, 1), got {t_min!r}")
    _native.check_backend(sigmas.device)
    if check_offsets:
        _check_offsets(offsets, n)


def _check_offsets(offsets: torch.Tensor, n: int) -> None:
    """Ray r owns samples offsets[r]:offsets[r + 1]: offsets start at 0, never decrease and end at n
    (checked here for every device: the core checks them only on the CPU). One sync when they are right."""
    steps = offsets[1:] < offsets[:-1]
    if bool((offsets[0] == 0) & (offsets[-1] == n) & ~steps.any()):
        return
    if int(offsets[0]) != 0:
        got = f"offsets[0] = {int(offsets[0])}"
    elif bool(steps.any()):
        i = int(torch.nonzero(steps)[0, 0])
        got = f"offsets[{i + 1}] = {int(offsets[i + 1])} after offsets[{i}] = {int(offsets[i])}"
    else:
        got = f"offsets[-1] = {int(offsets[-1])}"
    raise InputError(
        f"offsets must start at 0, never decrease and end at the number of samples ({n}), got {got}; "
        "build them as a cumulative sum of the rays' sample counts after a 0"
    )


def composite(
    sigmas: torch.Tensor,  # (S,)
    values: torch.Tensor,  # (S, C)
    t_starts: torch.Tensor,  # (S,)
    t_ends: torch.Tensor,  # (S,)
    offsets: torch.Tensor,  # (R + 1,) int64
    *,
    t_min: float = DEFAULT_T_MIN,
) -> Composited:
    """Composite packed samples along their rays.

    For ray ``r`` and its samples ``s`` in ``offsets[r]:offsets[r + 1]``:
    ``alpha_s = 1 - exp(-sigma_s (t_end_s - t_start_s))``, ``T_s = prod_{j<s} (1 - alpha_j)``,
    ``w_s = T_s alpha_s``, ``out[r] = sum_s w_s values[s]`` and ``opacity[r] = sum_s w_s``.

    Args:
        sigmas: ``(S,)`` densities (>= 0), float32 (float64 on the CPU too).
        values: ``(S, C)`` values to accumulate, same dtype and device (C may be 0).
        t_starts, t_ends: ``(S,)`` sample intervals, same dtype and device.
        offsets: ``(R + 1,)`` int64 on the same device, as from
            :func:`fields3d.render.march_rays`: 0, then never decreasing, ending at S.
        t_min: stop each ray once its transmittance falls below this (0: never).

    Returns:
        :class:`Composited`: ``out`` ``(R, C)``, ``opacity`` ``(R,)``, ``weights`` and ``trans``
        ``(S,)``, in the sigmas' dtype. ``out``, ``opacity`` and ``weights`` are differentiable
        w.r.t. ``sigmas`` and ``values`` (once; the intervals get no gradient).

    Example:
        >>> import math, torch
        >>> from fields3d.render import composite
        >>> sigmas = torch.full((2,), math.log(2.0))  # alpha = 1/2 over a unit interval
        >>> values = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # red, then green
        >>> t_starts, t_ends = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])
        >>> offsets = torch.tensor([0, 2, 2])  # ray 0 holds both samples, ray 1 none
        >>> res = composite(sigmas, values, t_starts, t_ends, offsets)
        >>> res.weights, res.opacity
        (tensor([0.5000, 0.2500]), tensor([0.7500, 0.0000]))
        >>> res.out
        tensor([[0.5000, 0.2500, 0.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    return _composite(sigmas, values, t_starts, t_ends, offsets, t_min, True)


def _composite(sigmas, values, t_starts, t_ends, offsets, t_min, check_offsets: bool) -> Composited:
    """:func:`composite`; ``check_offsets=False`` for offsets march_rays built (the check syncs the GPU)."""
    _check(sigmas, values, t_starts, t_ends, offsets, t_min, check_offsets)
    out, opacity, weights, trans = _Composite.apply(
        sigmas.contiguous(),
        values.contiguous(),
        t_starts.detach().contiguous(),
        t_ends.detach().contiguous(),
        offsets.contiguous(),
        float(t_min),
    )
    return Composited(out, opacity, weights, trans)


def composite_samples(
    samples: RaySamples,
    sigmas: torch.Tensor,  # (S,)
    values: torch.Tensor,  # (S, C)
    *,
    t_min: float = DEFAULT_T_MIN,
) -> Composited:
    """:func:`composite` over ``samples``' intervals and offsets; offsets that march_rays or
    :meth:`RaySamples.select` built are not checked again (the check syncs the GPU every call).

    Args:
        samples: :class:`RaySamples` of R rays and S samples (from :func:`march_rays`).
        sigmas: ``(S,)`` densities (>= 0) in the intervals' dtype and on their device.
        values: ``(S, C)`` values to accumulate, same dtype and device.
        t_min: as for :func:`composite`.

    Returns:
        :class:`Composited` (``out`` ``(R, C)``, ``opacity`` ``(R,)``, ``weights`` ``(S,)``).

    Example:
        >>> import torch
        >>> from fields3d.render import GridSpec, composite_samples, march_rays
        >>> origins = torch.tensor([[-1.0, 0.5, 0.5], [-1.0, 2.0, 0.5]])  # the second misses
        >>> dirs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> samples = march_rays(origins, dirs, GridSpec.from_aabb([[0, 0, 0], [1, 1, 1]]), step=0.25)
        >>> samples.counts.tolist()
        [4, 0]
        >>> res = composite_samples(samples, torch.full((4,), 2.0), torch.ones(4, 1))
        >>> res.opacity  # 1 - exp(-2 * 1), and an empty ray
        tensor([0.8647, 0.0000])
    """
    if not isinstance(samples, RaySamples):
        raise InputError(
            f"samples must be RaySamples (as march_rays returns), got {type(samples).__name__}"
        )
    return _composite(
        sigmas,
        values,
        samples.t_starts,
        samples.t_ends,
        samples.offsets,
        t_min,
        not samples.offsets_checked,
    )


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sigmas, values, t_starts, t_ends, offsets, t_min):
        rays = offsets.shape[0] - 1
        out = values.new_empty((rays, values.shape[1]))
        opacity, weights, trans = (
            values.new_empty(rays),
            sigmas.new_empty(sigmas.shape),
            sigmas.new_empty(sigmas.shape),
        )
        c = _native.capsule
        _core_ops.composite_forward(
            c(sigmas),
            c(t_starts),
            c(t_ends),
            c(values),
            c(offsets),
            t_min,
            c(out),
            c(opacity),
            c(weights),
            c(trans),
            _native.stream_of(sigmas.device),
        )
        ctx.save_for_backward(
            sigmas, values, t_starts, t_ends, offsets, out, opacity, weights, trans
        )
        ctx.t_min = t_min
        ctx.mark_non_differentiable(trans)
        ctx.set_materialize_grads(
            False
        )  # unused outputs give None: no pass over zero weight gradients
        return out, opacity, weights, trans

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_out, g_opacity, g_weights, _g_trans):
        sigmas, values, t_starts, t_ends, offsets, out, opacity, weights, trans = ctx.saved_tensors
        g_out = torch.zeros_like(out) if g_out is None else g_out.contiguous()
        g_opacity = torch.zeros_like(opacity) if g_opacity is None else g_opacity.contiguous()
        g_weights = None if g_weights is None else g_weights.contiguous()
        g_sigmas, g_values = torch.empty_like(sigmas), torch.empty_like(values)
        c = _native.capsule
        _core_ops.composite_backward(
            c(sigmas),
            c(t_starts),
            c(t_ends),
            c(values),
            c(offsets),
            ctx.t_min,
            c(out),
            c(opacity),
            c(weights),
            c(trans),
            c(g_out),
            c(g_opacity),
            c(g_weights),
            c(g_sigmas),
            c(g_values),
            _native.stream_of(sigmas.device),
        )
        return g_sigmas, g_values, None, None, None, None


def render_samples(
    samples: RaySamples,
    sigmas: torch.Tensor,  # (S,)
    colors: torch.Tensor,  # (S, K)
    *,
    background: torch.Tensor | float | None = None,
    t_min: float = DEFAULT_T_MIN,
) -> dict[str, torch.Tensor]:
    """Colour, depth and opacity of each ray from its samples' densities and colours.

    ``color[r] = sum_s w_s colors[s] + (1 - opacity[r]) background`` and
    ``depth[r] = sum_s w_s (t_start_s + t_end_s) / 2``, with the weights of :func:`composite`.

    Args:
        samples: the rays' :class:`RaySamples` (R rays, S samples).
        sigmas: ``(S,)`` densities (>= 0), float32 (float64 on the CPU too), on the samples' device.
        colors: ``(S, K)`` (K = 3 for RGB), same dtype and device.
        background: a colour composited behind each ray: a number, ``(K,)`` or ``(R, K)`` (a float
            tensor on the colours' device, any float dtype, or numbers); None: black, i.e. premultiplied colour.
        t_min: as for :func:`composite`.

    Returns:
        ``color`` (R, K), ``depth`` (R,) (expected ``t`` of the ray's weights, 0 where empty; divide
        by ``opacity`` for the depth of the visible surface), ``opacity`` (R,), ``weights`` (S,),
        in the colours' dtype.

    Example:
        >>> import torch
        >>> from fields3d.render import GridSpec, march_rays, render_samples
        >>> origins = torch.tensor([[-1.0, 0.5, 0.5], [-1.0, 2.0, 0.5]])  # the second misses
        >>> dirs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> samples = march_rays(origins, dirs, GridSpec.from_aabb([[0, 0, 0], [1, 1, 1]]), step=0.25)
        >>> red = torch.tensor([1.0, 0.0, 0.0]).expand(samples.n_samples, 3)
        >>> out = render_samples(samples, torch.full((4,), 1.0), red, background=1.0)  # white
        >>> out["color"]  # opacity 1 - exp(-1) of red over white
        tensor([[1.0000, 0.3679, 0.3679],
                [1.0000, 1.0000, 1.0000]])
        >>> out["depth"].shape, out["opacity"].shape, out["weights"].shape
        (torch.Size([2]), torch.Size([2]), torch.Size([4]))
    """
    if not isinstance(samples, RaySamples):
        raise InputError(
            f"samples must be RaySamples (as march_rays returns), got {type(samples).__name__}"
        )
    if (
        not isinstance(colors, torch.Tensor)
        or colors.dim() != 2
        or colors.shape[0] != samples.n_samples
    ):
        got = shape_str(colors) if isinstance(colors, torch.Tensor) else type(colors).__name__
        raise InputError(f"colors must have shape ({samples.n_samples}, K), got {got}")
    bg = None if background is None else _background(background, samples.n_rays, colors)
    mids = (0.5 * (samples.t_starts + samples.t_ends)).to(colors.dtype)[:, None]
    res = composite_samples(samples, sigmas, torch.cat([colors, mids], 1), t_min=t_min)
    color = res.out[:, :-1]
    if bg is not None:
        color = color + (1 - res.opacity)[:, None] * bg
    return {"color": color, "depth": res.out[:, -1], "opacity": res.opacity, "weights": res.weights}


def _background(value, rays: int, colors: torch.Tensor) -> torch.Tensor:
    """A number, a (K,) colour or (R, K) colours per ray (a float tensor, or numbers) in colors' dtype."""
    k = colors.shape[1]
    want = (
        f"background must be a number, a ({k},) colour or ({rays}, {k}) colours, one per ray "
        f"(float, on {colors.device})"
    )
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() or value.shape not in ((), (k,), (rays, k)):
            raise InputError(f"{want}, got {dtype_str(value.dtype)} {shape_str(value)}")
        if value.device != colors.device:
            raise InputError(
                f"background must be on {colors.device} like the colors, got {value.device}; "
                "move it with .to(device)"
            )
        return value.to(colors.dtype)
    if isinstance(value, bool) or not isinstance(value, (int, float, list, tuple)):
        raise InputError(f"{want}, got {type(value).__name__}")
    try:
        bg = torch.as_tensor(value, dtype=colors.dtype, device=colors.device)
    except (TypeError, ValueError, RuntimeError):
        bg = None
    if bg is None or bg.shape not in ((), (k,), (rays, k)):
        raise InputError(f"{want}, got {value!r}")
    return bg
