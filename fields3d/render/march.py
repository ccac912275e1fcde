"""Ray marching: packed samples along rays through an axis-aligned box or an occupancy grid.

A sample is an interval ``[t_start, t_end]`` of a ray ``o + t d``. Samples of all rays are packed
in one flat list, ray by ray in order: ray ``r`` owns ``offsets[r]:offsets[r + 1]`` and
``ray_ids`` names each sample's ray (nerfacc's packed layout). Counts and offsets are int64.

Stepping (the core's ``cuda/render/march.h`` states the rule exactly): from where the ray enters
the box (or ``near``), fixed steps of ``step`` (``cone = 0``) or steps growing as ``t * cone``
between ``step`` and ``max_step``; a step is kept when the occupancy cell holding its midpoint is
occupied, and the ray jumps over each empty cell in one move.

Instead of a grid, :class:`OccupancyTest` gives a box and a callable occupancy test (a learned
occupancy network): the box is marched by the core as a plain box (every step a candidate) and the
candidates whose midpoints the callable calls occupied are kept.

Memory is bounded: the samples of a call never exceed ``max_samples``. When the rays ask for more,
whole rays from the end of the batch are given no samples, and :attr:`RaySamples.rays_dropped`
says how many (counting and cumulative sums are 64-bit, so no count overflows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .. import _core_ops, _native
from .._checks import as_real, check_int, check_size, dtype_str, is_int, shape_str
from ..errors import InputError
from ._tensors import check_float, per_ray

#: The largest budget a call takes: 2^36 samples (1.1 TB of intervals and ids) is past any device's
#: memory, yet well past int32, so counts stay 64-bit (the budget bounds memory, it allocates nothing).
MAX_SAMPLE_BUDGET = 1 << 36
DEFAULT_MAX_SAMPLES = 1 << 24  # 16.8 M samples: 268 MB of float32 intervals and int64 ids
MIN_STEPS = 1e-7  # step must be at least this fraction of the grid's outer extent
MAX_LEVELS = 16  # the core's kMaxLevels
MAX_RESOLUTION = 4096  # cells per axis and level: the core's kMaxRes
MAX_SUBDIVIDE = 64  # an OccupancyTest's coarse step: at most this many steps


@dataclass(frozen=True)
class GridSpec:
    """The cascade the marcher walks: ``levels`` boxes ``center +- half * 2**l``, each of
    ``resolution`` cells, and their packed occupancy ``bits`` (uint8, bit ``b & 7`` of byte
    ``b >> 3``; None: every cell occupied).

    Attributes:
        center, half: 3 floats each, the finest box's centre and half extents (> 0).
        resolution: 3 ints, cells per axis and level (1 to 4096; multiples of 4 when levels > 1).
        levels: 1 to 16. bits: ``(ceil(levels * rx * ry * rz / 8),)`` uint8 on the rays' device,
            cell ``(l, i, j, k)`` at flat index ``((l * rx + i) * ry + j) * rz + k``
            (:func:`pack_bits` of a ``(levels, rx, ry, rz)`` bool tensor), or None.

    Example:
        >>> import torch
        >>> from fields3d.render import GridSpec, pack_bits
        >>> spec = GridSpec.from_aabb([[-1, -1, -1], [1, 1, 1]])  # a plain box
        >>> spec.center, spec.half, spec.resolution, spec.levels, spec.bits is None
        ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (2, 2, 2), 1, True)
        >>> occupied = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
        >>> occupied[0, 1, 1, 1] = True  # only the cell at the maximum corner
        >>> GridSpec(spec.center, spec.half, bits=pack_bits(occupied)).bits.tolist()
        [128]
    """

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    resolution: tuple[int, int, int] = (2, 2, 2)
    levels: int = 1
    bits: torch.Tensor | None = None

    @staticmethod
    def from_aabb(aabb) -> GridSpec:
        """A box with no empty-space skipping, from ``aabb`` = ``(2, 3)`` min and max corners."""
        try:
            box = torch.as_tensor(aabb, dtype=torch.float64).cpu()
        except (
            TypeError,
            ValueError,
            RuntimeError,
            NotImplementedError,
        ):  # text, ragged lists, meta tensors
            box = None
        if box is not None and box.shape == (2, 3):
            center, half = (
                box[0] / 2 + box[1] / 2,
                box[1] / 2 - box[0] / 2,
            )  # halved first: no overflow
            if bool(torch.isfinite(box).all()) and bool((half > 0).all()):
                return GridSpec(tuple(center.tolist()), tuple(half.tolist()))
        raise InputError(
            f"aabb must be finite (2, 3) min and max corners with max > min, got {aabb!r}"
        )


@dataclass(frozen=True)
class OccupancyTest:
    """A box to march with a callable occupancy test in place of a grid's bits.

    Attributes:
        box: the :class:`GridSpec` marched (its ``bits`` set or not: its cells, then the test).
        occupied: ``f(points (S, 3)) -> (S,)`` bool, True where a sample is kept; ``points`` are
            the candidates' midpoints in the rays' dtype and device, without gradients.
        max_candidates: the most candidates one call marches before testing (rays past it are
            dropped whole, as with ``max_samples``).
        subdivide: candidates are marched at this many times the step (1 to 64) and each kept one
            is cut into this many equal steps: fewer tests along empty stretches, at the price of
            deciding per coarse step.

    Example:
        >>> import torch
        >>> from fields3d.render import GridSpec, OccupancyTest, march_rays
        >>> box = GridSpec.from_aabb([[0, 0, 0], [1, 1, 1]])
        >>> test = OccupancyTest(box, lambda x: x[:, 0] > 0.5)  # the half x > 0.5 is occupied
        >>> origins, dirs = torch.tensor([[-1.0, 0.5, 0.5]]), torch.tensor([[1.0, 0.0, 0.0]])
        >>> march_rays(origins, dirs, test, step=0.25).t_starts.tolist()
        [1.5, 1.75]
    """

    box: GridSpec
    occupied: Callable[[torch.Tensor], torch.Tensor]
    max_candidates: int = DEFAULT_MAX_SAMPLES
    subdivide: int = 1


@dataclass
class RaySamples:
    """Packed samples of a batch of R rays (S samples in all): ray ``r`` owns samples
    ``offsets[r]:offsets[r + 1]``, intervals ``[t_starts, t_ends]`` of ``origin + t * dir``.

    Example:
        >>> import torch
        >>> from fields3d.render import GridSpec, march_rays
        >>> origins = torch.tensor([[-1.0, 0.5, 0.5], [0.5, -1.0, 0.5]])
        >>> dirs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> samples = march_rays(origins, dirs, GridSpec.from_aabb([[0, 0, 0], [1, 1, 1]]), step=0.5)
        >>> samples.n_rays, samples.n_samples, samples.ray_ids.tolist(), samples.offsets.tolist()
        (2, 4, [0, 0, 1, 1], [0, 2, 4])
        >>> samples.midpoints(origins, dirs)[:2].tolist()  # (S, 3) positions
        [[0.25, 0.5, 0.5], [0.75, 0.5, 0.5]]
        >>> kept = samples.select(samples.ray_ids == 0)  # keep: (S,) bool
        >>> kept.counts.tolist(), kept.t_starts.tolist()
        ([2, 0], [1.0, 1.5])
    """

    t_starts: torch.Tensor  # (S,)
    t_ends: torch.Tensor  # (S,)
    ray_ids: torch.Tensor  # (S,) int64
    offsets: torch.Tensor  # (R + 1,) int64
    rays_dropped: int = 0  # rays given no samples to stay within max_samples
    # True when march_rays or select built the offsets: compositing then skips checking them (a GPU sync)
    offsets_checked: bool = field(default=False, repr=False, compare=False)

    @property
    def n_samples(self) -> int:
        return int(self.t_starts.shape[0])

    @property
    def n_rays(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def counts(self) -> torch.Tensor:
        """(R,) int64 samples per ray."""
        return self.offsets[1:] - self.offsets[:-1]

    def samples_per_ray(self) -> float:
        return self.n_samples / max(self.n_rays, 1)

    def select(self, keep: torch.Tensor) -> RaySamples:
        """The samples where ``keep`` (``(S,)`` bool, on the samples' device) is True, packed again
        (rays keep their order)."""
        n = self.n_samples
        if not (
            isinstance(keep, torch.Tensor)
            and keep.dtype == torch.bool
            and tuple(keep.shape) == (n,)
        ):
            got = (
                f"{dtype_str(keep.dtype)} {shape_str(keep)}"
                if isinstance(keep, torch.Tensor)
                else type(keep).__name__
            )
            raise InputError(
                f"keep must be a bool tensor of shape ({n},), one flag per sample, got {got}"
            )
        if keep.device != self.ray_ids.device:
            raise InputError(
                f"keep must be on {self.ray_ids.device} like the samples, got {keep.device}; "
                "move it with .to(device)"
            )
        ray_ids = self.ray_ids[keep]
        counts = torch.bincount(ray_ids, minlength=self.n_rays)
        offsets = torch.zeros_like(self.offsets)
        torch.cumsum(counts, 0, out=offsets[1:])
        return RaySamples(
            self.t_starts[keep], self.t_ends[keep], ray_ids, offsets, self.rays_dropped, True
        )

    def midpoints(self, origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        """(S, 3) positions at the middle of each sample of ``origins`` and ``dirs`` ``(R, 3)``."""
        check_float("origins", origins, (self.n_rays, 3))
        check_float("dirs", dirs, (self.n_rays, 3), origins)
        t = (0.5 * (self.t_starts + self.t_ends))[:, None]
        return origins[self.ray_ids] + t * dirs[self.ray_ids]


def _check_rays(origins, dirs) -> None:
    check_float("origins", origins, (-1, 3))
    check_float("dirs", dirs, (origins.shape[0], 3), origins)
    _native.check_backend(origins.device)


def _check_grid(spec: GridSpec, like: torch.Tensor) -> torch.Tensor | None:
    """Raise InputError unless ``spec`` is a grid the core can walk with ``like``'s rays; returns its bits."""
    if not isinstance(spec, GridSpec):
        raise InputError(
            f"spec must be a GridSpec (GridSpec.from_aabb(aabb) or OccupancyGrid.spec()), "
            f"got {type(spec).__name__}"
        )
    check_int("the grid's levels", spec.levels, 1, MAX_LEVELS)
    res = spec.resolution
    if not (
        isinstance(res, (tuple, list))
        and len(res) == 3
        and all(is_int(r) for r in res)
        and all(1 <= r <= MAX_RESOLUTION for r in res)
    ):
        raise InputError(
            f"the grid's resolution must be 3 integers from 1 to {MAX_RESOLUTION} (cells per axis), "
            f"got {res!r}"
        )
    if spec.levels > 1 and any(r % 4 for r in res):
        raise InputError(
            f"the grid's resolution must be multiples of 4 with more than one level (each box holds "
            f"whole cells of the next), got {tuple(res)} with {spec.levels} levels"
        )
    _check_box(spec, like.dtype)
    return _check_bits(spec, like)


def _check_box(spec: GridSpec, dtype: torch.dtype) -> None:
    box = {}
    for name, ok in (("center", math.isfinite), ("half", lambda h: 0 < h < math.inf)):
        v = getattr(spec, name)
        box[name] = [as_real(x) for x in v] if isinstance(v, (tuple, list)) and len(v) == 3 else []
        if not (box[name] and all(x is not None and ok(x) for x in box[name])):
            what = "finite numbers" if name == "center" else "finite numbers > 0 (half extents)"
            raise InputError(f"the grid's {name} must be 3 {what}, got {v!r}")
    limit = torch.finfo(dtype).max / 2
    if (
        not max(abs(c) for c in box["center"]) + max(box["half"]) * 2.0 ** (spec.levels - 1)
        <= limit
    ):
        raise InputError(
            f"the grid's outermost box (center +- half * 2**{spec.levels - 1}) must lie within "
            f"+-{limit:.4g} for {dtype_str(dtype)} rays, got center {spec.center!r} "
            f"and half {spec.half!r}; use smaller units"
        )


def _check_bits(spec: GridSpec, like: torch.Tensor) -> torch.Tensor | None:
    bits = spec.bits
    if bits is None:
        return None
    if not isinstance(bits, torch.Tensor):
        raise InputError(
            f"the grid's bits must be None or a uint8 tensor (pack_bits(occupied)), "
            f"got {type(bits).__name__}"
        )
    if bits.device != like.device or bits.dtype != torch.uint8:
        raise InputError(
            f"the grid's bits must be uint8 on {like.device} like the rays, got {bits.dtype} on {bits.device}"
        )
    (rx, ry, rz), levels = spec.resolution, spec.levels
    n = (levels * rx * ry * rz + 7) // 8
    if tuple(bits.shape) != (n,):
        raise InputError(
            f"the grid's bits must have shape ({n},) ({levels} level(s) of {rx}x{ry}x{rz} cells, 8 to "
            f"a byte: pack_bits(occupied)), got {shape_str(bits)}"
        )
    return bits.contiguous()


def _check_spec(spec: GridSpec, step, cone, max_step) -> tuple[float, float, float]:
    """(step, cone, max_step) as floats, or InputError."""
    outer = 2 * float(max(spec.half)) * 2.0 ** (spec.levels - 1)
    s = as_real(step)
    if s is None or not s >= MIN_STEPS * outer or not math.isfinite(s):
        raise InputError(
            f"step must be a finite number >= {MIN_STEPS:g} of the grid's extent ({MIN_STEPS * outer:.3g}), got {step!r}"
        )
    if s > outer:
        raise InputError(
            f"step must be at most the grid's extent ({outer:.3g}), got {step!r}; a longer step "
            "leaves at most one sample per ray"
        )
    c = as_real(cone)
    if c is None or not 0 <= c < math.inf:
        raise InputError(f"cone must be a finite number >= 0, got {cone!r}")
    m = outer if max_step is None else as_real(max_step)
    if m is None or not s <= m < math.inf:
        raise InputError(f"max_step must be a finite number >= step ({step}), got {max_step!r}")
    return s, c, m


def _check_clip(near, far) -> None:
    """Numbers near and far: not NaN, far >= near. (An (R,) tensor is per ray: a NaN or far < near
    there leaves that ray no samples, as a NaN origin does; checking it would sync the GPU.)"""
    n, f = as_real(near), as_real(far)
    for name, v, given in (("near", n, near), ("far", f, far)):
        if v is not None and math.isnan(v):
            raise InputError(
                f"{name} must be a number or an (R,) float tensor, not NaN, got {given!r}"
            )
    if n is not None and f is not None and not f >= n:
        raise InputError(
            f"far must be a number >= near ({near!r}) or an (R,) float tensor, got {far!r}; rays are "
            "sampled from near to far"
        )


def _budget(counts: torch.Tensor, max_samples: int) -> tuple[torch.Tensor, int]:
    """Zero the counts of the rays past the budget; returns (offsets, rays dropped)."""
    offsets = torch.zeros(counts.shape[0] + 1, dtype=torch.int64, device=counts.device)
    torch.cumsum(counts, 0, out=offsets[1:])
    if int(offsets[-1]) <= max_samples:
        return offsets, 0
    keep = offsets[1:] <= max_samples  # prefix of whole rays that fits
    dropped = int((~keep).sum())
    counts = torch.where(keep, counts, torch.zeros_like(counts))
    torch.cumsum(counts, 0, out=offsets[1:])
    return offsets, dropped


def march_rays(
    origins: torch.Tensor,  # (R, 3)
    dirs: torch.Tensor,  # (R, 3)
    spec: GridSpec,
    *,
    step: float,
    near: float | torch.Tensor = 0.0,
    far: float | torch.Tensor = math.inf,
    cone: float = 0.0,
    max_step: float | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> RaySamples:
    """March rays through ``spec``'s boxes, keeping steps in occupied cells.

    Args:
        origins: ``(R, 3)`` ray origins, float32 (float64 on the CPU too).
        dirs: ``(R, 3)`` directions, same dtype and device; ``t`` is in units of ``|dir|``.
        spec: the grid (:meth:`GridSpec.from_aabb` for a plain box, or ``OccupancyGrid.spec()``),
            or an :class:`OccupancyTest` (its box marched, the candidates it calls empty dropped).
        step: the smallest step. near, far: numbers or ``(R,)`` tensors clipping each ray.
        cone: steps grow as ``t * cone`` (0: fixed steps). max_step: the largest step
            (default: the outer box's extent).
        max_samples: the most samples this call may return (see the module's notes).

    Returns:
        :class:`RaySamples`: ``t_starts``, ``t_ends`` ``(S,)`` in the rays' dtype, ``ray_ids``
        ``(S,)`` and ``offsets`` ``(R + 1,)`` int64, on the rays' device; gradients do not flow
        through the intervals.

    Raises:
        InputError: a wrong tensor, a grid the core cannot walk (levels 1 to 16, resolution 1 to
            4096 a side, finite box within the rays' float range, bits of the grid's size), a
            step outside 1e-7 to 1 times the grid's extent, ``max_samples`` past
            :data:`MAX_SAMPLE_BUDGET`, or numbers ``near``/``far`` that are NaN or
            out of order. Per-ray tensors are not read (that would sync the GPU): a NaN there, or
            ``far < near``, gives that ray no samples.

    Example:
        >>> import torch
        >>> from fields3d.render import GridSpec, march_rays
        >>> spec = GridSpec.from_aabb([[0, 0, 0], [1, 1, 1]])
        >>> origins = torch.tensor([[-1.0, 0.5, 0.5], [-1.0, 2.0, 0.5]])  # the second misses
        >>> dirs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> samples = march_rays(origins, dirs, spec, step=0.25)
        >>> samples.t_starts.tolist(), samples.t_ends.tolist(), samples.offsets.tolist()
        ([1.0, 1.25, 1.5, 1.75], [1.25, 1.5, 1.75, 2.0], [0, 4, 4])
        >>> march_rays(origins, dirs, spec, step=0.25, far=1.5).counts.tolist()  # clipped
        [2, 0]
        >>> budget = march_rays(origins.repeat(2, 1), dirs.repeat(2, 1), spec, step=0.25, max_samples=6)
        >>> budget.counts.tolist(), budget.rays_dropped  # whole rays from the end get none
        ([4, 0, 0, 0], 2)
    """
    if isinstance(spec, OccupancyTest):
        clip = {"near": near, "far": far, "cone": cone, "max_step": max_step}
        return _march_tested(origins, dirs, spec, step, clip, max_samples)
    _check_rays(origins, dirs)
    bits = _check_grid(spec, origins)
    step, cone, max_step = _check_spec(spec, step, cone, max_step)
    check_size("max_samples", max_samples, 0, MAX_SAMPLE_BUDGET)
    _check_clip(near, far)
    origins, dirs = origins.detach().contiguous(), dirs.detach().contiguous()
    nears, fars = per_ray("near", near, origins).detach(), per_ray("far", far, origins).detach()
    c = _native.capsule
    grid = (
        spec.levels,
        list(spec.resolution),
        [float(x) for x in spec.center],
        [float(x) for x in spec.half],
        step,
        cone,
        max_step,
    )
    stream = _native.stream_of(origins.device)
    counts = torch.empty(origins.shape[0], dtype=torch.int64, device=origins.device)
    _core_ops.march_count(c(origins), c(dirs), c(nears), c(fars), c(bits), *grid, c(counts), stream)
    offsets, dropped = _budget(counts, max_samples)
    n = int(offsets[-1])
    t_starts = origins.new_empty(n)
    t_ends = origins.new_empty(n)
    ray_ids = torch.empty(n, dtype=torch.int64, device=origins.device)
    _core_ops.march_emit(
        c(origins),
        c(dirs),
        c(nears),
        c(fars),
        c(bits),
        *grid,
        c(offsets),
        c(t_starts),
        c(t_ends),
        c(ray_ids),
        stream,
    )
    return RaySamples(t_starts, t_ends, ray_ids, offsets, dropped, True)


def _march_tested(origins, dirs, test: OccupancyTest, step, clip: dict, max_samples) -> RaySamples:
    """:func:`march_rays` through ``test.box`` at ``subdivide`` times the step, keeping the
    candidates ``test.occupied`` keeps, each split into ``subdivide`` equal steps; the budget
    ``max_samples`` bounds the kept samples (whole rays from the end dropped)."""
    check_size("max_samples", max_samples, 0, MAX_SAMPLE_BUDGET)
    check_size("max_candidates", test.max_candidates, 0, MAX_SAMPLE_BUDGET)
    check_int("subdivide", test.subdivide, 1, MAX_SUBDIVIDE)
    k = test.subdivide
    if k > 1:  # coarse candidates (at most the box's extent: one step across it)
        outer = 2 * float(max(test.box.half)) * 2.0 ** (test.box.levels - 1)
        s = as_real(step)
        step = min(s * k, outer) if s is not None and s > 0 else step
        if clip["max_step"] is not None and as_real(clip["max_step"]) is not None:
            clip = {**clip, "max_step": max(as_real(clip["max_step"]) * k, step)}
    candidates = march_rays(
        origins, dirs, test.box, step=step, max_samples=test.max_candidates, **clip
    )
    with torch.no_grad():
        keep = test.occupied(candidates.midpoints(origins.detach(), dirs.detach()))
    n = candidates.n_samples
    if not (isinstance(keep, torch.Tensor) and keep.dtype == torch.bool and keep.shape == (n,)):
        got = (
            f"{dtype_str(keep.dtype)} {shape_str(keep)}"
            if isinstance(keep, torch.Tensor)
            else type(keep).__name__
        )
        raise InputError(
            f"the occupancy test must return a bool tensor of shape ({n},), one flag per candidate "
            f"midpoint, got {got}"
        )
    kept = _split(candidates.select(keep.to(candidates.ray_ids.device)), k)
    offsets, dropped = _budget(kept.counts, max_samples)
    if dropped == 0:
        return kept
    n = int(offsets[-1])
    ray_ids = kept.ray_ids[:n]
    dropped = max(dropped, candidates.rays_dropped)
    return RaySamples(kept.t_starts[:n], kept.t_ends[:n], ray_ids, offsets, dropped, True)


def _split(samples: RaySamples, k: int) -> RaySamples:
    """Each sample cut into ``k`` equal steps, in order."""
    if k == 1:
        return samples
    part = torch.arange(k, device=samples.t_starts.device, dtype=samples.t_starts.dtype)
    part = part.repeat(samples.n_samples)
    t0 = samples.t_starts.repeat_interleave(k)
    dt = ((samples.t_ends - samples.t_starts) / k).repeat_interleave(k)
    return RaySamples(
        t0 + part * dt,
        t0 + (part + 1) * dt,
        samples.ray_ids.repeat_interleave(k),
        samples.offsets * k,
        samples.rays_dropped,
        True,
    )
