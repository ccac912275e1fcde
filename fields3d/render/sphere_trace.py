"""Sphere tracing of signed distance fields, and shaded pictures of them.

Sphere tracing (Hart 1996) walks a ray ``o + t d`` in steps of the field's value: for an exact SDF
``f``, no surface lies within ``|f(x)|`` of ``x``, so ``t += f(o + t d) / |d|`` never passes one.
``step_scale < 1`` shortens every step for fields that overestimate the distance (neural SDFs,
SDFs of deformed shapes); a field that underestimates it (e.g. ``0.5 * sdf``) only costs steps.

The march, ray by ray:

1. The ray is clipped to ``[near, far]`` and, when ``aabb`` is given, to the box (slab test), so
   empty space before the box costs no evaluation and a ray that misses the box costs none.
2. The first evaluation decides the ray's *side*: a ray starting inside the surface (``f < 0``)
   marches forward to where it leaves it, with steps of ``|f|``.
3. Each step evaluates the field at the active rays only (the set shrinks as rays finish), at
   most ``chunk`` points per call of the field. A ray *hits* when ``|f| < eps``; it *misses* when
   its next step leaves ``[near, far]`` or the box, when the field returns a non-finite value, or
   when ``max_steps`` evaluations did not reach the surface.
4. A ray whose value changes sign between two steps has stepped over the surface (a field that
   overestimates). With ``refine`` (the default) it is a hit, and the bracket between the two
   steps is narrowed by regula falsi (Illinois variant, at most ``REFINE_STEPS`` evaluations, until
   ``|f| < eps``); without, the ray steps back by the negative value, as plain sphere tracing does.

``eps`` is absolute, in the field's units (world units for an exact SDF), not relative to the box:
a field is rarely exact to better than a fraction of its own resolution, which only its user knows.
``t`` is in units of ``|d|`` (the rule of :func:`fields3d.render.march_rays`); with unit directions
it is the distance from the origin.

Why torch and not the C++ core: every step is a query of an arbitrary torch field (a hash grid and
an MLP, a trilinear grid, a lambda), and those queries dominate the time; the bookkeeping around
them is a few vectorised tensor operations per step, so a native marcher would gain little and
could not call the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._checks import check_int, dtype_str, is_number, rgb_triple, shape_str
from ..errors import InputError
from ._tensors import check_float, per_ray
from .cameras import Cameras, image_rays

DEFAULT_CHUNK = (
    1 << 18
)  # points per call of the field (a NeuralSDF's activations for 2^18 points: ~100 MB)
DEFAULT_NORMAL_STEP = 1e-3  # central-difference step of normals="finite", in the field's units
REFINE_STEPS = 10  # most regula falsi evaluations per bracketed ray
NORMAL_MODES = ("autograd", "finite", None)
NEAR_RULE = (
    "must be finite and >= 0 (t runs forward from the origin)"  # near's rule, in its messages
)
# The lighting of fields3d.geometry.pictures, so SDF pictures and mesh pictures look alike.
AMBIENT, HEADLIGHT, KEY = 0.22, 0.48, 0.38
KEY_CAMERA = (-0.45, 0.55, 0.70)  # key light direction in camera coordinates (right, up, backward)

SDF = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class TraceResult:
    """Where R rays met the surface.

    Attributes:
        t: ``(R,)`` the hit's ``t`` (units of ``|dir|``); ``inf`` for a miss.
        hit: ``(R,)`` bool.
        positions: ``(R, 3)`` ``origins + t * dirs`` at hits; 0 for a miss.
        steps: ``(R,)`` int64 evaluations of the field the ray used (march and refinement; normals
            not counted); 0 for a ray that misses the box or whose ``[near, far]`` is empty.
        normals: ``(R, 3)`` unit gradients of the field at hits (outward, towards ``f > 0``), 0
            for a miss (or a zero gradient); None unless asked for.

    All in the rays' dtype (``hit`` bool, ``steps`` int64) and on their device.

    Example:
        >>> import torch
        >>> from fields3d.render import sphere_trace
        >>> res = sphere_trace(
        ...     lambda x: x.norm(dim=1) - 1.0,  # the unit sphere
        ...     torch.tensor([[0.0, 0.0, -3.0]]),  # origins (1, 3)
        ...     torch.tensor([[0.0, 0.0, 1.0]]),  # dirs (1, 3)
        ...     far=10.0,
        ... )
        >>> res.t.tolist(), res.hit.tolist(), res.positions.tolist(), res.steps.tolist()
        ([2.0], [True], [[0.0, 0.0, -1.0]], [2])
        >>> res.normals is None  # normals="autograd" or "finite" fills them
        True
    """

    t: torch.Tensor
    hit: torch.Tensor
    positions: torch.Tensor
    steps: torch.Tensor
    normals: torch.Tensor | None = None


@dataclass
class SDFRender:
    """A picture of an SDF from one camera (H, W: the camera's picture size).

    Attributes:
        image: ``(H, W, 3)`` RGB in ``[0, 1]``, the background where no ray hit.
        depth: ``(H, W)`` distance from the camera centre to the hit along the pixel's ray, 0 for
            background.
        mask: ``(H, W)`` bool, the pixels whose ray hit.
        normals: ``(H, W, 3)`` unit world-space normals (outward), 0 for background.
        steps: ``(H, W)`` int64 field evaluations per pixel (a cost picture).

    All in the rays' dtype (``mask`` bool, ``steps`` int64) and on the cameras' device.

    Example:
        >>> from fields3d.render import render_sdf
        >>> from fields3d.render.cameras import ring_cameras
        >>> cams = ring_cameras((0, 0, 0), 3.0, frames=1, size=8)
        >>> view = render_sdf(lambda x: x.norm(dim=1) - 1.0, cams, 0, far=6.0)
        >>> [tuple(t.shape) for t in (view.image, view.depth, view.mask, view.normals, view.steps)]
        [(8, 8, 3), (8, 8), (8, 8), (8, 8, 3), (8, 8)]
        >>> view.image[0, 0].tolist()  # a corner pixel: the white background
        [1.0, 1.0, 1.0]
    """

    image: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    normals: torch.Tensor
    steps: torch.Tensor


def sphere_trace(
    sdf: SDF,
    origins: torch.Tensor,  # (R, 3)
    dirs: torch.Tensor,  # (R, 3)
    *,
    near: float | torch.Tensor = 0.0,
    far: float | torch.Tensor = math.inf,
    aabb=None,
    max_steps: int = 128,
    eps: float = 1e-4,
    step_scale: float = 1.0,
    refine: bool = True,
    normals: str | None = None,
    normal_step: float = DEFAULT_NORMAL_STEP,
    chunk: int = DEFAULT_CHUNK,
) -> TraceResult:
    """Sphere-trace rays against the zero level set of ``sdf`` (the rules in the module docstring).

    Args:
        sdf: any callable from ``(N, 3)`` points (the rays' dtype and device) to ``(N,)`` or
            ``(N, 1)`` signed distances, negative inside: a :class:`~fields3d.fields.NeuralSDF`,
            a :class:`~fields3d.fields.BandSDFGrid`, a lambda. It must treat points independently.
        origins: ``(R, 3)`` finite ray origins, float32 or float64, any device.
        dirs: ``(R, 3)`` finite non-zero directions, same dtype and device (need not be unit).
        near, far: numbers or ``(R,)`` tensors bounding ``t``: ``0 <= near <= far`` ray by ray
            (``near == far``: one evaluation); ``far`` may be ``inf`` only with an ``aabb``.
        aabb: ``(2, 3)`` min and max corners (tensor or nested sequence) of a box holding the
            surface, or None.
        max_steps: the most march evaluations per ray (>= 1).
        eps: hit threshold on ``|sdf|``, absolute, in the field's units (> 0).
        step_scale: each step is ``step_scale * |sdf| / |dir|``, in ``(0, 1]``; below 1 for fields
            that overestimate the distance (0.5 for a field up to twice too large).
        refine: narrow a bracket by regula falsi when a step passed the surface (module docstring).
        normals: ``"autograd"`` (the field's gradient by autograd, at a detached copy of the hit
            points; the field must be differentiable in its input), ``"finite"`` (central
            differences with step ``normal_step``: 6 evaluations per hit) or None.
        normal_step: the central-difference step of ``normals="finite"``, in the field's units (> 0).
        chunk: the most points per call of ``sdf`` (>= 1); bounds the memory of one call.

    Returns:
        :class:`TraceResult`, on the rays' device and dtype, without gradients (the march runs
        under ``torch.no_grad``).

    Raises:
        InputError: a wrong type, dtype, shape or device; non-finite origins or directions; a
            non-finite or negative near, or a near past far; an infinite far without an aabb; a bad
            aabb or setting; a field returning a wrong shape.

    Example:
        >>> import torch
        >>> from fields3d.render import sphere_trace
        >>> sphere = lambda x: x.norm(dim=1) - 0.5  # negative inside
        >>> origins = torch.tensor([[0.0, 0.0, -2.0], [0.0, 2.0, -2.0], [0.0, 0.0, 0.0]])
        >>> dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> res = sphere_trace(sphere, origins, dirs, aabb=[[-1, -1, -1], [1, 1, 1]], normals="finite")
        >>> res.hit.tolist()  # the second ray misses the box; the third starts inside
        [True, False, True]
        >>> res.t.tolist()
        [1.5, inf, 0.5]
        >>> res.normals.round(decimals=3).tolist()  # outward, 0 for a miss
        [[0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    _check_trace_args(
        sdf, origins, dirs, max_steps, eps, step_scale, refine, normals, normal_step, chunk
    )
    origins, dirs = origins.detach(), dirs.detach()
    t_start, t_end = _ray_bounds(origins, dirs, near, far, aabb)
    with torch.no_grad():
        t, hit, steps = _march(
            sdf, origins, dirs, t_start, t_end, max_steps, eps, step_scale, refine, chunk
        )
        t = torch.where(hit, t, torch.full_like(t, math.inf))
        positions = torch.where(
            hit[:, None], origins + t.nan_to_num(posinf=0.0)[:, None] * dirs, 0.0
        )
    out = TraceResult(t, hit, positions, steps)
    if normals is not None:
        out.normals = torch.zeros_like(positions)
        if bool(hit.any()):
            grad = _gradients(sdf, positions[hit], normals, normal_step, chunk)
            out.normals[hit] = grad / grad.norm(dim=1, keepdim=True).clamp_min(
                torch.finfo(grad.dtype).tiny
            )
    return out


def render_sdf(
    sdf: SDF,
    cameras: Cameras,
    index: int,
    *,
    near: float = 0.0,
    far: float = math.inf,
    aabb=None,
    max_steps: int = 128,
    eps: float = 1e-4,
    step_scale: float = 1.0,
    refine: bool = True,
    normals: str = "autograd",
    normal_step: float = DEFAULT_NORMAL_STEP,
    chunk: int = DEFAULT_CHUNK,
    color=(0.75, 0.78, 0.85),
    background=(1.0, 1.0, 1.0),
    dtype: torch.dtype | None = None,
) -> SDFRender:
    """Sphere-trace every pixel of camera ``index`` and shade the hits.

    Shading is two-sided, with the lighting of :func:`fields3d.geometry.render_mesh`:
    ``color * (AMBIENT + HEADLIGHT * max(0, n.v) + KEY * max(0, n.key))``, where ``v`` points from
    the hit back to the camera (a headlight), ``n`` is the field's normal turned towards the camera,
    and the key light comes from the upper left in front of the camera.

    Args:
        sdf: the field, as for :func:`sphere_trace`. cameras, index: the camera (see
            :func:`fields3d.render.cameras.image_rays`).
        near, far, aabb, max_steps, eps, step_scale, refine, normal_step, chunk: as for
            :func:`sphere_trace`. normals: ``"autograd"`` or ``"finite"``.
        color, background: RGB in ``[0, 1]``: three numbers, one (grey) or a ``(3,)`` tensor.
        dtype: the rays' dtype (float32 or float64); None: the cameras' (a float32 field such as
            NeuralSDF needs float32 rays).

    Returns:
        :class:`SDFRender` on the cameras' device: ``image`` ``(H, W, 3)``, ``depth`` ``(H, W)``,
        ``mask`` ``(H, W)`` bool, ``normals`` ``(H, W, 3)``, ``steps`` ``(H, W)`` int64.

    Example:
        >>> from fields3d.render import render_sdf
        >>> from fields3d.render.cameras import ring_cameras
        >>> cams = ring_cameras((0, 0, 0), 3.0, frames=4, size=16)  # float32 cameras
        >>> view = render_sdf(lambda x: x.norm(dim=1) - 1.0, cams, 2, aabb=[[-1, -1, -1], [1, 1, 1]])
        >>> view.image.shape, view.image.dtype, int(view.mask.sum())
        (torch.Size([16, 16, 3]), torch.float32, 188)
        >>> round(float(view.depth[view.mask].min()), 2)  # the centre pixels: 3 - 1 away
        2.0
    """
    if normals not in ("autograd", "finite"):
        raise InputError(f"normals must be 'autograd' or 'finite', got {normals!r}")
    color, background = rgb_triple("color", color), rgb_triple("background", background)
    if dtype not in (None, torch.float32, torch.float64):
        raise InputError(f"dtype must be torch.float32, torch.float64 or None, got {dtype!r}")
    origins, dirs = image_rays(cameras, index)
    if dtype is not None:
        origins, dirs = origins.to(dtype), dirs.to(dtype)
    res = sphere_trace(
        sdf,
        origins,
        dirs,
        near=near,
        far=far,
        aabb=aabb,
        max_steps=max_steps,
        eps=eps,
        step_scale=step_scale,
        refine=refine,
        normals=normals,
        normal_step=normal_step,
        chunk=chunk,
    )
    n = res.normals
    facing = torch.where((n * dirs).sum(1, keepdim=True) > 0, -1.0, 1.0).to(n.dtype)  # two-sided
    n = n * facing
    basis = cameras.c2w[index, :3, :3].to(n.dtype)  # columns: right, up, backward
    key = basis @ torch.tensor(KEY_CAMERA, dtype=n.dtype, device=n.device)
    key = key / key.norm()
    light = AMBIENT + HEADLIGHT * (-(n * dirs).sum(1)).clamp(0, 1) + KEY * (n @ key).clamp(0, 1)
    rgb = torch.tensor(color, dtype=n.dtype, device=n.device) * light[:, None]
    bg = torch.tensor(background, dtype=n.dtype, device=n.device).expand_as(rgb)
    image = torch.where(res.hit[:, None], rgb.clamp(0, 1), bg)
    h, w = cameras.height, cameras.width
    return SDFRender(
        image.view(h, w, 3),
        torch.where(res.hit, res.t, 0.0).view(h, w),
        res.hit.view(h, w),
        res.normals.view(h, w, 3),
        res.steps.view(h, w),
    )


# --- checks -----------------------------------------------------------------------------------


def _check_trace_args(
    sdf, origins, dirs, max_steps, eps, step_scale, refine, normals, normal_step, chunk
) -> None:
    if not callable(sdf):
        raise InputError(
            f"sdf must be a callable from (N, 3) points to (N,) values, got {type(sdf).__name__}"
        )
    check_float("origins", origins, (-1, 3))
    check_float("dirs", dirs, (origins.shape[0], 3), origins)
    bad = ~torch.isfinite(origins).all(dim=1)
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0, 0])
        raise InputError(f"origins[{i}] must be finite, got {origins[i].tolist()}")
    bad = ~(torch.isfinite(dirs).all(dim=1) & (dirs != 0).any(dim=1))
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0, 0])
        raise InputError(f"dirs[{i}] must be a finite non-zero direction, got {dirs[i].tolist()}")
    check_int("max_steps", max_steps, 1)
    check_int("chunk", chunk, 1)
    if not is_number(eps) or not 0 < eps < math.inf:
        raise InputError(f"eps must be a finite number > 0 (an absolute distance), got {eps!r}")
    if not is_number(step_scale) or not 0 < step_scale <= 1:
        raise InputError(f"step_scale must be a number in (0, 1], got {step_scale!r}")
    if not isinstance(refine, bool):
        raise InputError(f"refine must be True or False, got {refine!r}")
    if normals not in NORMAL_MODES:
        raise InputError(f"normals must be 'autograd', 'finite' or None, got {normals!r}")
    if not is_number(normal_step) or not 0 < normal_step < math.inf:
        raise InputError(f"normal_step must be a finite number > 0, got {normal_step!r}")


def _label(name: str, value, i: int) -> str:
    """``near`` (a number) or ``near[i]`` (a tensor), for a message."""
    return f"{name}[{i}]" if isinstance(value, torch.Tensor) else name


def _first_bad(
    name: str, value, values: torch.Tensor, bad: torch.Tensor, rule: str = "must be finite"
) -> str:
    """``near`` or ``near[i]``, the rule it breaks and the offending value, for a message."""
    i = int(torch.nonzero(bad)[0, 0])
    return f"{_label(name, value, i)} {rule}, got {float(values[i])}"


def _check_order(near, far, nears: torch.Tensor, fars: torch.Tensor) -> None:
    """near <= far, ray by ray (near == far: one evaluation at near)."""
    bad = nears > fars
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0, 0])
        raise InputError(
            f"{_label('near', near, i)} must be <= {_label('far', far, i)}, got {float(nears[i])} and "
            f"{float(fars[i])}; t runs from near to far along each ray"
        )


def _check_aabb(aabb, like: torch.Tensor) -> torch.Tensor:
    try:
        box = torch.as_tensor(aabb, dtype=torch.float64).cpu()
    except (TypeError, ValueError, RuntimeError):
        box = None
    if (
        box is None
        or box.shape != (2, 3)
        or not bool(torch.isfinite(box).all())
        or not bool((box[1] > box[0]).all())
    ):
        raise InputError(
            f"aabb must be finite (2, 3) min and max corners with max > min, got {aabb!r}"
        )
    return box.to(dtype=like.dtype, device=like.device)


def _ray_bounds(origins, dirs, near, far, aabb) -> tuple[torch.Tensor, torch.Tensor]:
    """(R,) first and last t each ray may take: [near, far] clipped to the box."""
    nears, fars = per_ray("near", near, origins).detach(), per_ray("far", far, origins).detach()
    bad = ~(torch.isfinite(nears) & (nears >= 0))
    if bool(bad.any()):
        raise InputError(_first_bad("near", near, nears, bad, NEAR_RULE))
    if aabb is None:
        bad = ~torch.isfinite(fars)
        if bool(bad.any()):
            raise InputError(
                _first_bad("far", far, fars, bad) + "; bound the rays with a finite far or an aabb"
            )
    else:
        bad = torch.isnan(fars)
        if bool(bad.any()):
            raise InputError(_first_bad("far", far, fars, bad, "must be a number or inf"))
    _check_order(near, far, nears, fars)
    if aabb is None:
        return nears, fars
    enter, leave = _slabs(origins, dirs, _check_aabb(aabb, origins))
    return torch.maximum(nears, enter), torch.minimum(fars, leave)


def _slabs(origins, dirs, box) -> tuple[torch.Tensor, torch.Tensor]:
    """(R,) t where each ray enters and leaves the box (enter > leave: it misses)."""
    lo, hi = box[0], box[1]
    parallel = dirs == 0
    safe = torch.where(parallel, 1.0, dirs)
    t0, t1 = (lo - origins) / safe, (hi - origins) / safe
    inside = (origins >= lo) & (origins <= hi)  # for an axis the ray runs parallel to
    inf = torch.full_like(t0, math.inf)
    enter = torch.where(parallel, torch.where(inside, -inf, inf), torch.minimum(t0, t1))
    leave = torch.where(parallel, torch.where(inside, inf, -inf), torch.maximum(t0, t1))
    return enter.amax(dim=1), leave.amin(dim=1)


# --- the march --------------------------------------------------------------------------------


def _evaluate(sdf: SDF, points: torch.Tensor, chunk: int) -> torch.Tensor:
    """``(N,)`` values of the field at ``(N, 3)`` points, ``chunk`` points per call."""
    out = []
    for s in range(0, points.shape[0], chunk):
        p = points[s : s + chunk]
        out.append(_values(sdf(p), p))
    return torch.cat(out) if out else points.new_empty(0)


def _values(v, p: torch.Tensor) -> torch.Tensor:
    m = p.shape[0]
    ok = isinstance(v, torch.Tensor) and v.dtype.is_floating_point and v.shape in ((m,), (m, 1))
    if not ok:
        got = (
            f"{dtype_str(v.dtype)} {shape_str(v)}"
            if isinstance(v, torch.Tensor)
            else type(v).__name__
        )
        raise InputError(
            f"sdf must return float values of shape ({m},) or ({m}, 1) for ({m}, 3) points, got {got}"
        )
    return v.reshape(m).to(p.dtype)


# Columns of the march's packed state, one row per active ray: compacting the active set is then
# one gather per step, not one per quantity.
_O, _D = slice(0, 3), slice(3, 6)  # origin, direction
_T, _T0, _T1, _INV, _SIDE, _TP, _FP = range(
    6, 13
)  # t, first t, last t, 1/|d|, side, previous t and f


def _march(sdf, origins, dirs, t_start, t_end, max_steps, eps, step_scale, refine, chunk):
    """(t, hit, steps) of every ray; ``t`` of a miss is meaningless (the caller sets inf)."""
    n = origins.shape[0]
    t_out = t_start.clone()
    hit = torch.zeros(n, dtype=torch.bool, device=origins.device)
    steps = torch.zeros(n, dtype=torch.int64, device=origins.device)
    ids = torch.nonzero(t_start <= t_end).squeeze(1)
    zero = torch.zeros_like(t_start[ids, None])
    state = torch.cat(
        (
            origins[ids],
            dirs[ids],
            t_start[ids, None],
            t_start[ids, None],
            t_end[ids, None],
            1.0 / dirs[ids].norm(dim=1, keepdim=True),
            zero + 1,
            zero,
            zero,
        ),
        dim=1,
    )
    brackets = []  # (ray ids, their state rows, t and f after the sign change), per step
    for step in range(max_steps):
        if ids.numel() == 0:
            break
        t = state[:, _T]
        f = _evaluate(sdf, state[:, _O] + t[:, None] * state[:, _D], chunk)
        if step == 0:  # +1: the ray starts outside (f >= 0), -1: inside
            state[:, _SIDE] = torch.where(f < 0, -1.0, 1.0).to(f.dtype)
        f = f * state[:, _SIDE]  # > 0 on the ray's starting side
        finite = torch.isfinite(f)
        done = finite & (f.abs() < eps)
        crossed = finite & ~done & (f < 0)
        if refine and bool(crossed.any()):
            brackets.append((ids[crossed], state[crossed], t[crossed], f[crossed]))
            done = done | crossed
        t_next = torch.maximum(t + step_scale * f * state[:, _INV], state[:, _T0])
        go = finite & ~done & (t_next <= state[:, _T1])
        state[:, _TP], state[:, _FP] = t, f  # t is a view of state: copy it before it moves on
        finishing = not bool(go.all())
        if finishing:
            steps[ids[~go]] = step + 1
            hit[ids[done]] = True
            t_out[ids[done]] = state[done, _TP]
        state[:, _T] = t_next
        if finishing:
            state, ids = state[go], ids[go]
    steps[ids] = max_steps  # still marching when the steps ran out: misses
    if brackets:
        ids, rows, t_hi, f_hi = (torch.cat(parts) for parts in zip(*brackets))
        t_out[ids] = _regula_falsi(
            sdf,
            rows,
            rows[:, _TP].clone(),
            rows[:, _FP].clone(),
            t_hi,
            f_hi,
            eps,
            chunk,
            steps,
            ids,
        )
    return t_out, hit, steps


def _regula_falsi(sdf, rows, t_lo, f_lo, t_hi, f_hi, eps, chunk, steps, ids):
    """Roots of ``side * sdf`` along the rays of state ``rows`` in brackets ``f_lo > 0 > f_hi``
    (Illinois: the end kept twice in a row has its value halved, which avoids the one-sided crawl
    of plain regula falsi)."""

    def secant():
        return t_lo - f_lo * (t_hi - t_lo) / (f_hi - f_lo)

    kept = torch.zeros_like(t_lo)  # +1: lo was kept by the last update, -1: hi was
    out = secant()
    active = torch.arange(t_lo.shape[0], device=t_lo.device)
    for _ in range(REFINE_STEPS):
        if active.numel() == 0:
            break
        tm = secant()[active]
        r = rows[active]
        f = _evaluate(sdf, r[:, _O] + tm[:, None] * r[:, _D], chunk) * r[:, _SIDE]
        steps[ids[active]] += 1
        out[active] = tm
        above = f > 0  # the new point replaces lo; otherwise it replaces hi
        f_lo[active] = torch.where(
            above, f, torch.where(kept[active] > 0, 0.5 * f_lo[active], f_lo[active])
        )
        t_lo[active] = torch.where(above, tm, t_lo[active])
        f_hi[active] = torch.where(
            above, torch.where(kept[active] < 0, 0.5 * f_hi[active], f_hi[active]), f
        )
        t_hi[active] = torch.where(above, t_hi[active], tm)
        kept[active] = torch.where(above, -1.0, 1.0).to(kept.dtype)
        active = active[torch.isfinite(f) & (f.abs() >= eps)]
    if active.numel():
        out[active] = secant()[active]  # not converged: the bracket's secant root
    return out


def _gradients(sdf: SDF, points: torch.Tensor, mode: str, h: float, chunk: int) -> torch.Tensor:
    """``(M, 3)`` spatial gradients of the field at ``(M, 3)`` points."""
    if mode == "finite":
        offsets = torch.eye(3, dtype=points.dtype, device=points.device) * h
        probes = torch.stack(
            (points[:, None] + offsets, points[:, None] - offsets), dim=1
        )  # (M, 2, 3, 3)
        with torch.no_grad():
            f = _evaluate(sdf, probes.reshape(-1, 3), chunk).view(-1, 2, 3)
        return (f[:, 0] - f[:, 1]) / (2 * h)
    out = []
    for s in range(0, points.shape[0], chunk):
        p = points[s : s + chunk].detach().requires_grad_(True)
        with torch.enable_grad():
            f = _values(sdf(p), p)
            if not f.requires_grad:
                raise InputError(
                    "normals='autograd' needs an sdf differentiable in its input points (its values have no "
                    "gradient); pass normals='finite'"
                )
            (g,) = torch.autograd.grad(f.sum(), p)
        out.append(g)
    return torch.cat(out)
