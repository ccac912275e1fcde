"""Rendering ops: fields3d's ray marcher and compositing against pure torch (and nerfacc on CUDA), same run.

Scene: a one-level 128^3 occupancy grid over ``[-1, 1]^3`` with every cell that intersects the
ball of radius 0.5 at the origin occupied; one pinhole camera (field of view 50 degrees) at
``(1.8, 1.2, 2.1)`` (distance 3.0) looking at the origin, one ray through each pixel centre of an
S x S picture (``--rays-side``: 512 on cuda, 256 on cpu); fixed steps of ``sqrt(3) * 2 / 1024``
(nerfacc's ``render_step_size`` for a [-1, 1]^3 scene), float32. Compositing inputs, evaluated at
each sample's midpoint: density 50 inside the ball and 0 outside, and colour ``0.5 + 0.5 x``
(3 channels).

Workloads, each ours against the pure-torch peer (and nerfacc with ``--nerfacc``):

* ``sampling``          ours: ``march_rays(origins, dirs, grid.spec(), step=...)`` (count pass,
                        cumulative sum, emit pass). Peer: a vectorised torch sampler written here
                        (:func:`torch_sampler`): every fixed step between the box entry and exit of
                        every ray, kept when its midpoint's cell is occupied, rays in chunks of at
                        most ``--chunk`` steps. The sample counts must agree (within 0.1%; the
                        difference is printed). nerfacc: ``OccGridEstimator.sampling`` with the
                        same binary grid and step, no density function (so no alpha or early-stop
                        culling) and ``t_min`` = our per-ray box entry, so both walk the same
                        grid of steps (its counts are printed beside ours, not asserted: it
                        advances ``t`` by repeated addition).
* ``composite fwd``     ours: ``composite(sigmas, colours, t_starts, t_ends, offsets)`` under
                        ``no_grad``. Peer: ``fields3d.render.reference.composite_reference``
                        (cumulative sums). Both stop rays at transmittance ``--t-min`` (1e-4, the
                        op's default; the peer masks after computing every sample). nerfacc:
                        ``render_weight_from_density`` + ``accumulate_along_rays`` for the colour
                        and the opacity (what ``nerfacc.rendering`` does, less its depth), no
                        early stop.
* ``composite fwd+bwd`` the same with ``sigmas`` and colours requiring grad, then
                        ``((out * dy).sum() + (opacity * dop).sum()).backward()`` with fixed
                        random ``dy``, ``dop`` (peers: autograd).
* memory floor          not an implementation: the same inputs read once with torch sums (and
                        for fwd+bwd the values read again and each gradient written once with a
                        zero fill; :func:`floor_runs`). No compositor that reads its inputs and
                        writes its gradients can be faster on the machine, so ``torch / floor``
                        (printed, ``max_speedup_vs_torch`` in the JSON) caps the speed-up any
                        compositor can have over the torch peer there.

Timing: wall clock, ``--warmup`` untimed runs then the median (and min-max) of ``--repeats`` runs
for ours; peers 1 warm-up and ``--ref-repeats`` runs; CUDA synchronised around each run. The JSON
also keeps the load average (``os.getloadavg()``) at the start and end: on a shared machine it
says how busy the cores were.

nerfacc on the GPU machine (it has no network). nerfacc 0.5.3 is pure Python and compiles its
CUDA code on first use (torch's JIT, needs nvcc and ninja; a few minutes, spent in the untimed
warm-up and reported as ``first_call_s``). Fetch it where there is a network with
``scripts/fetch-nerfacc`` (into ``vendor/nerfacc``, git-ignored), carry ``vendor/`` to the GPU
machine, and install it there with
``pip install --no-deps --no-index --find-links vendor/nerfacc nerfacc==0.5.3`` (``scripts/gpu-check``
does this when ``vendor/nerfacc`` exists; nerfacc also imports ``rich``, which fields3d installs).

Usage::

    python benchmarks/render.py [--device auto|cpu|cuda] [--rays-side 256] [--repeats 5]
                                [--ref-repeats 3] [--warmup 2] [--t-min 1e-4] [--chunk N]
                                [--threads N] [--no-reference] [--nerfacc] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable

import torch
from _common import RESULTS_DIR, environment, fmt, measure, print_table, usable_device, write_json

from fields3d import _native
from fields3d.render import OccupancyGrid, RaySamples, composite, march_rays, pack_bits
from fields3d.render.cameras import Cameras, focal_from_fov, image_rays
from fields3d.render.reference import composite_reference

AABB = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
RESOLUTION = 128
RADIUS = 0.5
DENSITY = 50.0
STEP = math.sqrt(3) * 2 / 1024
CAMERA = (1.8, 1.2, 2.1)
FOV_DEG = 50.0
DEFAULT_SIDE = {"cpu": 256, "cuda": 512}
DEFAULT_CHUNK = {"cpu": 1 << 21, "cuda": 1 << 24}
MAX_SAMPLES = 1 << 31  # no budget: the sample counts must not depend on it
COUNT_TOLERANCE = 1e-3  # ours vs the torch sampler, relative
TARGET_CPU_SPEEDUP = 20.0
NERFACC_VERSION = "0.5.3"
NERFACC_INSTALL = (
    f"fetch it with scripts/fetch-nerfacc, then pip install --no-deps --no-index "
    f"--find-links vendor/nerfacc nerfacc=={NERFACC_VERSION}"
)
HUGE = 1e30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: cuda when torch sees a GPU, else cpu",
    )
    p.add_argument(
        "--rays-side", type=int, help="S for S x S rays (default 512 on cuda, 256 on cpu)"
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs of ours (default 5)")
    p.add_argument("--ref-repeats", type=int, default=3, help="timed runs of each peer (default 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs of ours first (peers: 1)")
    p.add_argument(
        "--t-min",
        type=float,
        default=1e-4,
        help="compositing early-stop transmittance (default 1e-4)",
    )
    p.add_argument(
        "--chunk",
        type=int,
        help="steps per chunk of the torch sampler (default 2^21 cpu, 2^24 cuda)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="core and torch threads (default: the core's and torch's choice)",
    )
    p.add_argument("--no-reference", action="store_true", help="time ours only")
    p.add_argument(
        "--nerfacc", action="store_true", help=f"also time nerfacc {NERFACC_VERSION} (cuda only)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", help="JSON result path (default benchmarks/results/render-<device>.json)"
    )
    return p.parse_args(argv)


# --- scene -----------------------------------------------------------------------------------


def make_grid(device: torch.device) -> OccupancyGrid:
    """The 128^3 grid with the cells that intersect the ball occupied (exact box-ball test)."""
    grid = OccupancyGrid(AABB, resolution=RESOLUTION, levels=1)
    edges = torch.linspace(-1.0, 1.0, RESOLUTION + 1, dtype=torch.float64)
    gap = torch.maximum(edges[:-1], -edges[1:]).clamp(
        min=0
    )  # per axis: cell to origin (the centre)
    d2 = gap[:, None, None] ** 2 + gap[None, :, None] ** 2 + gap[None, None, :] ** 2
    grid.occupied.copy_((d2 <= RADIUS**2)[None])
    grid.bits.copy_(pack_bits(grid.occupied))
    return grid.to(device)


def make_rays(side: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(S*S, 3) origins and unit directions of the camera looking at the origin."""
    pos = torch.tensor(CAMERA, dtype=torch.float64)
    back = pos / pos.norm()
    right = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), back)
    right = right / right.norm()
    up = torch.linalg.cross(back, right)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, back, pos
    f = torch.tensor([focal_from_fov(math.radians(FOV_DEG), side)], dtype=torch.float32)
    c = torch.tensor([side / 2.0], dtype=torch.float32)
    cams = Cameras(c2w[None].float(), f, f, c, c, side, side)
    origins, dirs = image_rays(cams, 0)
    return origins.to(device).contiguous(), dirs.to(device).contiguous()


def shade(origins, dirs, t_starts, t_ends, ray_ids) -> tuple[torch.Tensor, torch.Tensor]:
    """(S,) densities (50 inside the ball) and (S, 3) colours at the samples' midpoints."""
    x = origins[ray_ids] + (0.5 * (t_starts + t_ends))[:, None] * dirs[ray_ids]
    sigmas = torch.where(x.norm(dim=1) < RADIUS, DENSITY, 0.0).to(x.dtype)
    return sigmas, (0.5 + 0.5 * x).clamp(0.0, 1.0)


# --- the pure-torch sampler -------------------------------------------------------------------


def box_interval(origins, dirs, center, half) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry (clipped to near = 0) and exit ``t`` of each ray through the box, as ``ray_box`` in
    cuda/render/march.h computes them (same float operations, so the same grid of steps)."""
    c, h = origins.new_tensor(center), origins.new_tensor(half)
    inv = 1.0 / dirs
    ta, tb = (c - h - origins) * inv, (c + h - origins) * inv
    zero = dirs == 0
    outside = (origins - c).abs() > h
    lo = torch.where(zero, -HUGE, torch.minimum(ta, tb))
    hi = torch.where(zero, torch.where(outside, -HUGE, HUGE), torch.maximum(ta, tb))
    return lo.amax(1).clamp(min=0.0), hi.amin(1)


def torch_sampler(origins, dirs, center, half, occupied, step: float, chunk: int):
    """Fixed-step samples in occupied cells, vectorised: (t_starts, t_ends, ray_ids, candidates).

    Every ray takes every step ``t0 + k step < t1`` between its box entry and exit; a step is
    kept when its midpoint lies in the box and in an occupied cell of ``occupied`` (bool
    (X, Y, Z)). Rays go in chunks of at most ``chunk`` steps (``chunk / longest ray`` rays), so
    memory stays bounded. ``candidates`` counts the steps evaluated.
    """
    t0, t1 = box_interval(origins, dirs, center, half)
    n = (
        torch.where(t1 > t0, torch.ceil((t1 - t0) / step), 0.0).long() + 1
    )  # +1: the rounding of ceil
    n_max = int(n.max()) if n.numel() else 0
    per_chunk = max(1, chunk // max(n_max, 1))
    res = torch.tensor(occupied.shape, device=origins.device)
    flat_occ = occupied.reshape(-1)
    c, h = origins.new_tensor(center), origins.new_tensor(half)
    lo, size = c - h, 2 * h
    ks = torch.arange(n_max, device=origins.device, dtype=origins.dtype)
    starts, ids, candidates = [], [], 0
    for s in range(0, origins.shape[0], per_chunk):
        e = min(s + per_chunk, origins.shape[0])
        k = int(n[s:e].max())
        candidates += (e - s) * k
        t = t0[s:e, None] + ks[:k] * step  # (C, K)
        x = origins[s:e, None, :] + (t + 0.5 * step)[..., None] * dirs[s:e, None, :]
        cell = torch.floor((x - lo) / size * res)
        inside = ((cell >= 0) & (cell < res)).all(-1)
        ijk = torch.minimum(cell.long().clamp_(min=0), res - 1)
        keep = (
            (t < t1[s:e, None])
            & inside
            & flat_occ[(ijk[..., 0] * res[1] + ijk[..., 1]) * res[2] + ijk[..., 2]]
        )
        rows, cols = keep.nonzero(as_tuple=True)
        starts.append(t[rows, cols])
        ids.append(rows + s)
    t_starts = torch.cat(starts) if starts else origins.new_zeros(0)
    ray_ids = torch.cat(ids) if ids else torch.zeros(0, dtype=torch.int64, device=origins.device)
    return t_starts, t_starts + step, ray_ids, candidates


# --- nerfacc (CUDA, optional) -----------------------------------------------------------------


def import_nerfacc():
    """nerfacc, or a SystemExit saying how to install it offline."""
    try:
        import nerfacc
    except ImportError as exc:
        raise SystemExit(
            f"error: --nerfacc needs nerfacc {NERFACC_VERSION}, which is not installed ({exc}); "
            f"{NERFACC_INSTALL}"
        ) from exc
    if nerfacc.__version__ != NERFACC_VERSION:
        print(
            f"warning: nerfacc {nerfacc.__version__} is installed; this benchmark was written for "
            f"{NERFACC_VERSION}",
            file=sys.stderr,
        )
    return nerfacc


def nerfacc_estimator(nerfacc, grid: OccupancyGrid, device: torch.device):
    """An ``OccGridEstimator`` holding our grid's binary occupancy (same cell order: x, y, z)."""
    lo, hi = AABB
    est = nerfacc.OccGridEstimator(roi_aabb=[*lo, *hi], resolution=RESOLUTION, levels=1).to(device)
    est.binaries = grid.occupied.reshape(1, RESOLUTION, RESOLUTION, RESOLUTION).clone()
    return est


def nerfacc_sampling(est, origins, dirs, t_entry) -> Callable[[], tuple]:
    """``est.sampling`` with no density function (no culling) starting each ray at ``t_entry``."""
    return lambda: est.sampling(
        origins,
        dirs,
        near_plane=0.0,
        far_plane=1e10,
        t_min=t_entry,
        render_step_size=STEP,
        early_stop_eps=0.0,
        alpha_thre=0.0,
        stratified=False,
        cone_angle=0.0,
    )


def nerfacc_composite(nerfacc, sigmas, values, t_starts, t_ends, ray_ids, n_rays):
    """(colour (R, 3), opacity (R,)) as ``nerfacc.rendering`` computes them (no depth)."""
    weights, _, _ = nerfacc.render_weight_from_density(
        t_starts, t_ends, sigmas, ray_indices=ray_ids, n_rays=n_rays
    )
    out = nerfacc.accumulate_along_rays(weights, values, ray_indices=ray_ids, n_rays=n_rays)
    opacity = nerfacc.accumulate_along_rays(weights, None, ray_indices=ray_ids, n_rays=n_rays)
    return out, opacity[:, 0]


# --- workloads --------------------------------------------------------------------------------


def composite_fns(samples, t_min: float) -> dict[str, Callable]:
    """name -> fn(sigmas, values) -> (out, opacity), for ours and the torch peer."""
    ts, te, off = samples.t_starts, samples.t_ends, samples.offsets

    def ours(s, v):
        res = composite(s, v, ts, te, off, t_min=t_min)
        return res.out, res.opacity

    def reference(s, v):
        out, opacity, _ = composite_reference(s, v, ts, te, off, t_min=t_min)
        return out, opacity

    return {"ours": ours, "torch": reference}


def forward_run(fn, sigmas, values) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            fn(sigmas, values)

    return run


def backward_run(fn, sigmas, values, dy, dop) -> Callable[[], tuple]:
    """A closure: fresh leaf copies of sigmas and values, loss backward, returns their grads."""
    s, v = (
        sigmas.detach().clone().requires_grad_(True),
        values.detach().clone().requires_grad_(True),
    )

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        s.grad = v.grad = None
        out, opacity = fn(s, v)
        ((out * dy).sum() + (opacity * dop).sum()).backward()
        return s.grad, v.grad

    return run


def floor_runs(samples, sigmas, values) -> tuple[Callable[[], None], Callable[[], None]]:
    """The memory traffic every compositor has, as torch's fastest passes (sums and zero fills).

    Forward: read each input once (densities, both interval ends, values). Forward and backward:
    that, then read the values again (a density's gradient needs g_out . v) and write each
    gradient once (densities' and values'). Whatever the arithmetic, a compositor that reads and
    writes these cannot beat this time on the machine, so ``peer / floor`` caps any speed-up.
    """
    inputs = (sigmas, samples.t_starts, samples.t_ends, values)

    def fwd() -> None:
        for x in inputs:
            x.sum()

    def fwd_bwd() -> None:
        fwd()
        values.sum()
        torch.empty_like(sigmas).zero_()
        torch.empty_like(values).zero_()

    return fwd, fwd_bwd


def add_floor(fwd: dict, bwd: dict, runs, device, args) -> None:
    """The floor's timings into the rows, and the most speed-up over the torch peer it allows."""
    for row, run in zip((fwd, bwd), runs):
        row["memory_floor"] = timed(run, device, args.repeats, args.warmup)
        ref, floor = row.get("torch", {}).get("median_ms"), row["memory_floor"].get("median_ms")
        if ref and floor:
            row["max_speedup_vs_torch"] = ref / floor


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) if a.numel() else 0.0


def timed(run: Callable, device: torch.device, repeats: int, warmup: int) -> dict:
    try:
        return measure(run, device, repeats=repeats, warmup=warmup)
    except torch.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        return {"error": f"out of memory: {str(exc).splitlines()[0]}"}


def bench_sampling(origins, dirs, grid, device, args, nerfacc) -> tuple[dict, RaySamples]:
    spec = grid.spec()
    samples = march_rays(origins, dirs, spec, step=STEP, max_samples=MAX_SAMPLES)
    row = {
        "workload": "sampling",
        "samples": samples.n_samples,
        "samples_per_ray": samples.samples_per_ray(),
        "ours": timed(
            lambda: march_rays(origins, dirs, spec, step=STEP, max_samples=MAX_SAMPLES),
            device,
            args.repeats,
            args.warmup,
        ),
    }
    occ = grid.occupied[0]
    if not args.no_reference:

        def run() -> tuple:
            return torch_sampler(origins, dirs, spec.center, spec.half, occ, STEP, args.chunk)

        ts, _, ids, candidates = run()
        diff = ts.shape[0] - samples.n_samples
        row.update(
            torch_samples=ts.shape[0],
            torch_candidates=candidates,
            count_diff=diff,
            count_rel_diff=diff / max(samples.n_samples, 1),
        )
        if abs(row["count_rel_diff"]) > COUNT_TOLERANCE:
            raise SystemExit(
                f"error: the torch sampler made {ts.shape[0]} samples and ours {samples.n_samples} "
                f"(differ by more than {COUNT_TOLERANCE:.1%}): the two samplers disagree"
            )
        if diff == 0:
            row["torch_max_abs_diff_t"] = max_diff(ts, samples.t_starts)
            row["torch_same_ray_ids"] = bool(torch.equal(ids, samples.ray_ids))
        row["torch"] = timed(run, device, args.ref_repeats, 1)
    if nerfacc is not None:
        row["nerfacc"] = time_nerfacc_sampling(nerfacc, grid, origins, dirs, spec, device, args)
    return row, samples


def time_nerfacc_sampling(nerfacc, grid, origins, dirs, spec, device, args) -> dict:
    try:
        est = nerfacc_estimator(nerfacc, grid, device)
        t_entry, _ = box_interval(origins, dirs, spec.center, spec.half)
        run = nerfacc_sampling(est, origins, dirs, t_entry)
        start = time.perf_counter()
        ray_ids, _, _ = run()  # the first call compiles nerfacc's CUDA code (unless cached)
        torch.cuda.synchronize(device)
        first_call_s = time.perf_counter() - start
        stats = timed(run, device, args.ref_repeats, 1)
    except Exception as exc:  # a failed JIT build must not lose the rest of the run
        return {"error": f"{type(exc).__name__}: {exc}"}
    return dict(stats, samples=int(ray_ids.shape[0]), first_call_s=first_call_s)


def fp64_truth(samples, t_min: float, sigmas, values, dy, dop) -> tuple[tuple, tuple]:
    """((out, opacity), (g_sigmas, g_values)) of ``composite_reference`` in float64: what each
    implementation's error is measured against (a float32 cumulative sum over millions of samples
    loses digits, so the float32 peer is not the truth)."""
    ts, te = samples.t_starts.double(), samples.t_ends.double()

    def fn(s, v):
        return composite_reference(s, v, ts, te, samples.offsets, t_min=t_min)[:2]

    with torch.no_grad():
        out = fn(sigmas.double(), values.double())
    return out, backward_run(fn, sigmas.double(), values.double(), dy.double(), dop.double())()


def max_err(got: tuple, truth: tuple) -> float:
    return max(max_diff(a.double(), b) for a, b in zip(got, truth))


def bench_composite(origins, dirs, samples, device, args, nerfacc) -> list[dict]:
    gen = torch.Generator(device=device).manual_seed(args.seed)
    sigmas, values = shade(origins, dirs, samples.t_starts, samples.t_ends, samples.ray_ids)
    dy = torch.randn((samples.n_rays, 3), generator=gen, device=device)
    dop = torch.randn((samples.n_rays,), generator=gen, device=device)
    fns = composite_fns(samples, args.t_min)
    if nerfacc is not None:
        ids, n = samples.ray_ids, samples.n_rays
        fns["nerfacc"] = lambda s, v: nerfacc_composite(
            nerfacc, s, v, samples.t_starts, samples.t_ends, ids, n
        )
    impls = (
        ["ours"]
        + ([] if args.no_reference else ["torch"])
        + (["nerfacc"] if nerfacc is not None else [])
    )
    truth_out, truth_grads = fp64_truth(samples, args.t_min, sigmas, values, dy, dop)
    base = {
        "samples": samples.n_samples,
        "samples_per_ray": samples.samples_per_ray(),
        "err_measure": "max |x - float64 composite_reference| over outputs (fwd) or gradients (fwd+bwd)",
    }
    fwd, bwd = dict(base, workload="composite fwd"), dict(base, workload="composite fwd+bwd")
    for impl in impls:
        repeats, warmup = (args.repeats, args.warmup) if impl == "ours" else (args.ref_repeats, 1)
        try:
            with torch.no_grad():
                out = fns[impl](sigmas, values)
            grads = backward_run(fns[impl], sigmas, values, dy, dop)()
        except Exception as exc:  # nerfacc's JIT build may fail on the GPU machine
            fwd[impl] = bwd[impl] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        fwd[f"{impl}_max_abs_err"] = max_err(out, truth_out)
        bwd[f"{impl}_max_abs_err_grad"] = max_err(grads, truth_grads)
        fwd[impl] = timed(forward_run(fns[impl], sigmas, values), device, repeats, warmup)
        bwd[impl] = timed(backward_run(fns[impl], sigmas, values, dy, dop), device, repeats, warmup)
    add_floor(fwd, bwd, floor_runs(samples, sigmas, values), device, args)
    with torch.no_grad():
        live = int(
            (
                composite(
                    sigmas,
                    values,
                    samples.t_starts,
                    samples.t_ends,
                    samples.offsets,
                    t_min=args.t_min,
                ).trans
                > 0
            ).sum()
        )
    fwd["live_samples"] = bwd["live_samples"] = live  # samples before each ray's early stop
    return [fwd, bwd]


def add_speedups(row: dict) -> None:
    ours = row["ours"].get("median_ms")
    for peer in ("torch", "nerfacc"):
        ref = row.get(peer, {}).get("median_ms")
        if ours and ref:
            row[f"speedup_vs_{peer}"] = ref / ours


# --- output -----------------------------------------------------------------------------------


def _ms(stats: dict | None):
    if not stats:
        return None
    return stats.get("median_ms", "error" if "error" in stats else None)


def _spread(stats: dict | None) -> str | None:
    if not stats or "median_ms" not in stats:
        return None
    return f"{fmt(stats['min_ms'])}-{fmt(stats['max_ms'])}"


def table(rows: list[dict], with_nerfacc: bool) -> tuple[list[str], list[list]]:
    headers = [
        "workload",
        "samples",
        "per ray",
        "ours ms",
        "ours min-max",
        "torch ms",
        "torch min-max",
        "vs torch",
    ]
    if with_nerfacc:
        headers += ["nerfacc ms", "nerfacc min-max", "vs nerfacc"]
    out = []
    for r in rows:
        line = [
            r["workload"],
            r["samples"],
            r["samples_per_ray"],
            _ms(r["ours"]),
            _spread(r["ours"]),
            _ms(r.get("torch")),
            _spread(r.get("torch")),
            _ratio(r.get("speedup_vs_torch")),
        ]
        if with_nerfacc:
            line += [
                _ms(r.get("nerfacc")),
                _spread(r.get("nerfacc")),
                _ratio(r.get("speedup_vs_nerfacc")),
            ]
        out.append(line)
    return headers, out


def _ratio(v: float | None) -> str | None:
    return None if v is None else f"{fmt(v)}x"


def count_line(row: dict) -> str:
    parts = [f"ours {row['samples']}"]
    if "torch_samples" in row:
        parts.append(
            f"torch {row['torch_samples']} (diff {row['count_diff']:+d}, "
            f"{100 * row['count_rel_diff']:+.4f}%; {row['torch_candidates']} steps evaluated)"
        )
    nf = row.get("nerfacc", {})
    if "samples" in nf:
        d = nf["samples"] - row["samples"]
        parts.append(
            f"nerfacc {nf['samples']} (diff {d:+d}, {100 * d / max(row['samples'], 1):+.4f}%)"
        )
    elif "error" in nf:
        parts.append(f"nerfacc failed: {nf['error']}")
    return "sample counts: " + ", ".join(parts)


def error_line(rows: list[dict]) -> str:
    fwd, bwd = rows[1], rows[2]
    parts = [
        f"{impl} {fwd[f'{impl}_max_abs_err']:.2g} (grads {bwd[f'{impl}_max_abs_err_grad']:.2g})"
        for impl in ("ours", "torch", "nerfacc")
        if f"{impl}_max_abs_err" in fwd
    ]
    return (
        f"compositing error against the float64 reference: {', '.join(parts)}; "
        f"{fwd['live_samples']} of {fwd['samples']} samples before the rays' early stop"
    )


def floor_line(rows: list[dict]) -> str:
    parts = []
    for r in rows[1:]:
        part = f"{r['workload']} {fmt(_ms(r['memory_floor']))} ms"
        if "max_speedup_vs_torch" in r:
            part += f" (caps the speed-up over torch at {fmt(r['max_speedup_vs_torch'])}x)"
        parts.append(part)
    return (
        "memory floor (read every input, write every gradient once, torch sums and fills): "
        + "; ".join(parts)
    )


def target_check(rows: list[dict], device: torch.device) -> dict | None:
    if device.type != "cpu" or "speedup_vs_torch" not in rows[0]:
        return None
    speedups = {r["workload"]: r.get("speedup_vs_torch") for r in rows}
    met = all(v is not None and v >= TARGET_CPU_SPEEDUP for v in speedups.values())
    return {
        "goal": f"ours >= {TARGET_CPU_SPEEDUP:g}x pure torch on CPU",
        "speedups": speedups,
        "met": met,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = usable_device(args.device)
    if device is None:
        return 2
    if args.nerfacc and device.type != "cuda":
        print("error: --nerfacc runs on cuda only (nerfacc has no CPU path)", file=sys.stderr)
        return 2
    nerfacc = import_nerfacc() if args.nerfacc else None
    if args.threads:
        torch.set_num_threads(args.threads)
        _native.core().set_num_threads(args.threads)
    side = args.rays_side or DEFAULT_SIDE[device.type]
    args.chunk = args.chunk or DEFAULT_CHUNK[device.type]
    load_start = os.getloadavg()

    grid = make_grid(device)
    origins, dirs = make_rays(side, device)
    print(
        f"  {side}x{side} rays, grid {grid.occupancy_fraction():.2%} occupied",
        file=sys.stderr,
        flush=True,
    )
    row, samples = bench_sampling(origins, dirs, grid, device, args, nerfacc)
    print(
        f"  sampling: {fmt(_ms(row['ours']))} ms ours, {fmt(_ms(row.get('torch')))} ms torch",
        file=sys.stderr,
        flush=True,
    )
    if "error" in row.get("nerfacc", {}):  # its build failed: do not build it again for compositing
        print(
            f"  nerfacc failed, skipped for compositing: {row['nerfacc']['error']}", file=sys.stderr
        )
    ok = nerfacc if nerfacc is not None and "error" not in row.get("nerfacc", {}) else None
    rows = [row] + bench_composite(origins, dirs, samples, device, args, ok)
    for r in rows:
        add_speedups(r)
    target = target_check(rows, device)

    env = environment(device)
    core_threads = _native.core().num_threads()
    print(
        f"\nrendering ops, {side}x{side} rays, {RESOLUTION}^3 grid ({grid.occupancy_fraction():.2%} occupied, "
        f"ball r={RADIUS}), step {STEP:.5f}, t_min {args.t_min:g}, fp32, on {env['device']['name']} "
        f"({core_threads} core threads, {torch.get_num_threads()} torch threads)"
    )
    print_table(*table(rows, nerfacc is not None))
    print(count_line(rows[0]))
    print(error_line(rows))
    print(floor_line(rows))
    if target:
        print(f"target ({target['goal']}): {'met' if target['met'] else 'NOT met'}")

    payload = {
        "benchmark": "render",
        "config": {
            "dtype": "float32",
            "grid": {
                "aabb": AABB,
                "resolution": RESOLUTION,
                "levels": 1,
                "occupied": f"cells intersecting the ball |x| <= {RADIUS}",
                "occupied_fraction": grid.occupancy_fraction(),
            },
            "camera": {
                "position": CAMERA,
                "look_at": (0, 0, 0),
                "fov_deg": FOV_DEG,
                "width": side,
                "height": side,
                "rays": side * side,
            },
            "step": STEP,
            "step_rule": "sqrt(3) * 2 / 1024, fixed (cone 0)",
            "near": 0.0,
            "density": f"{DENSITY} inside the ball, 0 outside (at sample midpoints)",
            "values": "colour 0.5 + 0.5 x clamped to [0, 1], 3 channels",
            "t_min": args.t_min,
            "peers": {
                "sampling": "torch_sampler in this file (dense fixed steps, chunked)",
                "composite": "fields3d.render.reference.composite_reference (autograd)",
                "nerfacc": (
                    f"nerfacc {NERFACC_VERSION}: OccGridEstimator.sampling (t_min = box entry, "
                    "no sigma_fn, alpha_thre 0, early_stop_eps 0); render_weight_from_density "
                    "+ accumulate_along_rays (no early stop)"
                )
                if nerfacc
                else None,
            },
        },
        **env,
        "threads": {"core": core_threads, "torch": torch.get_num_threads()},
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "settings": {
            "repeats": args.repeats,
            "ref_repeats": args.ref_repeats,
            "warmup": args.warmup,
            "ref_warmup": 1,
            "chunk": args.chunk,
            "seed": args.seed,
            "timing": "wall clock per run, CUDA synchronised before and after",
        },
        "nerfacc_version": getattr(nerfacc, "__version__", None),
        "target": target,
        "rows": rows,
    }
    out = write_json(args.out or RESULTS_DIR / f"render-{device.type}.json", payload)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
