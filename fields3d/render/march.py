"""Ray marching: packed samples along rays through an axis-aligned box or an occupancy grid.

A sample is an interval ``[t_start, t_end]`` of a ray ``o + t d``. Samples of all rays are packed
in one flat list, ray by ray in order: ray ``r`` owns ``offsets[r]:offsets[r + 1]`` and
``ray_ids`` names each sample's ray (nerfacc's packed layout). Counts and offsets are int64.

Stepping (the core's ``cuda/render/march.h`` states the rule exactly): from where the ray enters
the box (or ``near``), fixed steps of ``step`` (``cone = 0``) or steps growing as ``t * cone``
between ``step`` and ``max_step``; a step is kept when the occupancy cell holding its midpoint is
occupied, and the ray jumps over each empty cell in one move.

Memory is bounded: the samples of a call never exceed ``max_samples``. When the rays ask for more,
whole rays from the end of the batch are given no samples, and :attr:`RaySamples.rays_dropped`
says how many (counting and cumulative sums are 64-bit, so no count overflows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .. import _native
from ..errors import InputError
from ._tensors import check_backend, check_float, per_ray

DEFAULT_MAX_SAMPLES = 1 << 24  # 16.8 M samples: 268 MB of float32 intervals and int64 ids
MIN_STEPS = 1e-7  # step must be at least this fraction of the grid's outer extent


@dataclass(frozen=True)
class GridSpec:
    """The cascade the marcher walks: ``levels`` boxes ``center +- half * 2**l``, each of
    ``resolution`` cells, and their packed occupancy ``bits`` (uint8, bit ``b & 7`` of byte
    ``b >> 3``; None: every cell occupied)."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    resolution: tuple[int, int, int] = (2, 2, 2)
    levels: int = 1
    bits: torch.Tensor | None = None

    @staticmethod
    def from_aabb(aabb) -> "GridSpec":
        """A box with no empty-space skipping, from ``aabb`` = ``(2, 3)`` min and max corners."""
        box = torch.as_tensor(aabb, dtype=torch.float64).cpu()
        if box.shape != (2, 3) or not torch.isfinite(box).all() or not (box[1] > box[0]).all():
            raise InputError(f"aabb must be finite (2, 3) min and max corners with max > min, got {aabb!r}")
        center = ((box[0] + box[1]) / 2).tolist()
        half = ((box[1] - box[0]) / 2).tolist()
        return GridSpec(tuple(center), tuple(half))


@dataclass
class RaySamples:
    """Packed samples of a batch of R rays (S samples in all)."""

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

    def select(self, keep: torch.Tensor) -> "RaySamples":
        """The samples where ``keep`` (``(S,)`` bool) is True, packed again (rays keep their order)."""
        ray_ids = self.ray_ids[keep]
        counts = torch.bincount(ray_ids, minlength=self.n_rays)
        offsets = torch.zeros_like(self.offsets)
        torch.cumsum(counts, 0, out=offsets[1:])
        return RaySamples(self.t_starts[keep], self.t_ends[keep], ray_ids, offsets, self.rays_dropped, True)

    def midpoints(self, origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        """(S, 3) positions at the middle of each sample."""
        t = (0.5 * (self.t_starts + self.t_ends))[:, None]
        return origins[self.ray_ids] + t * dirs[self.ray_ids]


def _check_rays(origins, dirs) -> None:
    check_float("origins", origins, (-1, 3))
    check_float("dirs", dirs, (origins.shape[0], 3), origins)
    check_backend(origins)


def _check_spec(spec: GridSpec, step: float, cone: float, max_step: float | None) -> float:
    outer = 2 * max(spec.half) * 2 ** (spec.levels - 1)
    if not isinstance(step, (int, float)) or not step >= MIN_STEPS * outer or not math.isfinite(step):
        raise InputError(
            f"step must be a finite number >= {MIN_STEPS:g} of the grid's extent ({MIN_STEPS * outer:.3g}), got {step!r}"
        )
    if not isinstance(cone, (int, float)) or not 0 <= cone < math.inf:
        raise InputError(f"cone must be a finite number >= 0, got {cone!r}")
    max_step = outer if max_step is None else max_step
    if not isinstance(max_step, (int, float)) or not step <= max_step < math.inf:
        raise InputError(f"max_step must be a finite number >= step ({step}), got {max_step!r}")
    return float(max_step)


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
    origins: torch.Tensor,
    dirs: torch.Tensor,
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
        spec: the grid (:meth:`GridSpec.from_aabb` for a plain box, or ``OccupancyGrid.spec()``).
        step: the smallest step. near, far: numbers or ``(R,)`` tensors clipping each ray.
        cone: steps grow as ``t * cone`` (0: fixed steps). max_step: the largest step
            (default: the outer box's extent).
        max_samples: the most samples this call may return (see the module's notes).

    Returns:
        :class:`RaySamples`; gradients do not flow through the intervals.
    """
    _check_rays(origins, dirs)
    max_step = _check_spec(spec, step, cone, max_step)
    if not isinstance(max_samples, int) or max_samples < 0:
        raise InputError(f"max_samples must be an integer >= 0, got {max_samples!r}")
    origins, dirs = origins.detach().contiguous(), dirs.detach().contiguous()
    nears, fars = per_ray("near", near, origins).detach(), per_ray("far", far, origins).detach()
    bits = spec.bits
    if bits is not None and (bits.device != origins.device or bits.dtype != torch.uint8):
        raise InputError(f"the grid's bits must be uint8 on {origins.device} like the rays, got {bits.dtype} on {bits.device}")
    c, core = _native.capsule, _native.core()
    grid = (spec.levels, list(spec.resolution), list(spec.center), list(spec.half), float(step), float(cone), max_step)
    stream = _native.stream_of(origins.device)
    counts = torch.empty(origins.shape[0], dtype=torch.int64, device=origins.device)
    core.march_count(c(origins), c(dirs), c(nears), c(fars), c(bits), *grid, c(counts), stream)
    offsets, dropped = _budget(counts, max_samples)
    n = int(offsets[-1])
    t_starts = origins.new_empty(n)
    t_ends = origins.new_empty(n)
    ray_ids = torch.empty(n, dtype=torch.int64, device=origins.device)
    core.march_emit(c(origins), c(dirs), c(nears), c(fars), c(bits), *grid, c(offsets), c(t_starts), c(t_ends),
                    c(ray_ids), stream)
    return RaySamples(t_starts, t_ends, ray_ids, offsets, dropped, True)
