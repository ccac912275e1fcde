"""Pure-torch references for the rendering ops, written for clarity (tests compare against them)."""

from __future__ import annotations

import math

import torch

from .march import GridSpec


def _unpack(spec: GridSpec) -> torch.Tensor | None:
    if spec.bits is None:
        return None
    bits = spec.bits.cpu()
    shifts = torch.arange(8, dtype=torch.uint8)
    return ((bits[:, None] >> shifts) & 1).reshape(-1).bool()


def _ray_box(o, d, center, half):
    with torch.no_grad():
        inv = 1.0 / d
        t1, t2 = (center - half - o) * inv, (center + half - o) * inv
        lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
        zero = d == 0
        inside = (o - center).abs() <= half
        lo = torch.where(zero, torch.full_like(lo, -1e30), lo)
        hi = torch.where(
            zero, torch.where(inside, torch.full_like(hi, 1e30), torch.full_like(hi, -1e30)), hi
        )
        return lo.amax(1).clamp(min=-1e30), hi.amin(1).clamp(max=1e30)


def _cells(spec: GridSpec, x: torch.Tensor):
    """(level, flat cell index, ijk, cell lower corner, cell size) of points x (N, 3)."""
    center = x.new_tensor(spec.center)
    half = x.new_tensor(spec.half)
    m = ((x - center).abs() / half).amax(1)
    level = torch.where(m < 1, torch.zeros_like(m), torch.floor(torch.log2(m)) + 1).long()
    res = torch.tensor(spec.resolution, device=x.device)
    lv = level.clamp(max=spec.levels - 1).to(x.dtype)[:, None]
    h = half * 2.0**lv
    size = 2 * h / res
    ijk = torch.floor((x - (center - h)) / size).long().clamp(min=0)
    ijk = torch.minimum(ijk, res - 1)
    flat = (
        level.clamp(max=spec.levels - 1) * int(res.prod())
        + (ijk[:, 0] * res[1] + ijk[:, 1]) * res[2]
        + ijk[:, 2]
    )
    return level, flat, ijk, center - h + ijk * size, size


def march_reference(
    origins, dirs, spec: GridSpec, *, step, near=0.0, far=math.inf, cone=0.0, max_step=None
):
    """The marcher's loop (march.h) run for all rays at once; returns (t_starts, t_ends, ray_ids)."""
    o, d = origins.double().cpu(), dirs.double().cpu()
    n = o.shape[0]
    outer = 2.0 ** (spec.levels - 1)
    t0, t1 = _ray_box(o, d, o.new_tensor(spec.center), o.new_tensor(spec.half) * outer)
    t0 = torch.maximum(t0, torch.as_tensor(near, dtype=o.dtype).expand(n))
    t1 = torch.minimum(t1, torch.as_tensor(far, dtype=o.dtype).expand(n))
    occupied = _unpack(spec)
    max_step = 2 * max(spec.half) * outer if max_step is None else max_step
    t, k = t0.clone(), torch.zeros(n, dtype=torch.long)
    active = t0 < t1
    out = []
    while active.any():
        dt = torch.full_like(t, step) if cone == 0 else (t * cone).clamp(step, max_step)
        x = o + (t + dt / 2)[:, None] * d
        level, flat, _ijk, lo, size = _cells(spec, x)
        active &= level < spec.levels
        occ = (
            torch.ones_like(active)
            if occupied is None
            else occupied[flat.clamp(max=len(occupied) - 1)]
        )
        emit = active & occ
        out += [(t[r].item(), (t[r] + dt[r]).item(), r) for r in emit.nonzero().squeeze(1).tolist()]
        wall = lo + (d > 0) * size
        exits = torch.where(d != 0, (wall - o) / d, torch.full_like(d, 1e30)).amin(1)
        if cone == 0:
            jump = torch.ceil((exits - t0) / step - 0.5).long()
            k = torch.where(emit, k + 1, torch.where(jump > k, jump, k + 1))
            t_next = t0 + k * step
        else:
            t_next = torch.where(emit | (exits <= t), t + dt, exits)
        t = torch.where(active, t_next, t)
        active &= t < t1
    out.sort(key=lambda s: (s[2], s[0]))
    return (
        torch.tensor([s[0] for s in out], dtype=torch.float64),
        torch.tensor([s[1] for s in out], dtype=torch.float64),
        torch.tensor([s[2] for s in out], dtype=torch.long),
    )


def fixed_step_brute_force(origins, dirs, spec: GridSpec, *, step, near=0.0, far=math.inf):
    """Every grid step t0 + k step inside the clipped ray whose midpoint's cell is occupied."""
    o, d = origins.double().cpu(), dirs.double().cpu()
    outer = 2.0 ** (spec.levels - 1)
    t0, t1 = _ray_box(o, d, o.new_tensor(spec.center), o.new_tensor(spec.half) * outer)
    t0 = torch.maximum(t0, torch.as_tensor(near, dtype=o.dtype).expand(len(o)))
    t1 = torch.minimum(t1, torch.as_tensor(far, dtype=o.dtype).expand(len(o)))
    occupied = _unpack(spec)
    starts, ids = [], []
    for r in range(len(o)):
        if not t0[r] < t1[r]:
            continue
        ts = t0[r] + step * torch.arange(
            int(math.ceil((t1[r] - t0[r]).item() / step)) + 1, dtype=o.dtype
        )
        ts = ts[ts < t1[r]]
        x = o[r] + (ts + step / 2)[:, None] * d[r]
        level, flat, *_ = _cells(spec, x)
        inside = level < spec.levels
        first_out = (~inside).nonzero()
        keep = inside.clone()
        if len(first_out):
            keep[first_out[0, 0] :] = False
        if occupied is not None:
            keep &= occupied[flat.clamp(max=len(occupied) - 1)]
        starts.append(ts[keep])
        ids.append(torch.full((int(keep.sum()),), r, dtype=torch.long))
    t_starts = torch.cat(starts) if starts else torch.zeros(0, dtype=torch.float64)
    return t_starts, t_starts + step, torch.cat(ids) if ids else torch.zeros(0, dtype=torch.long)


def composite_reference(sigmas, values, t_starts, t_ends, offsets, *, t_min=0.0):
    """(out (R, C), opacity (R,), weights (S,)) by cumulative sums, differentiable by autograd."""
    counts = offsets[1:] - offsets[:-1]
    ray_ids = torch.repeat_interleave(torch.arange(len(counts), device=sigmas.device), counts)
    tau = sigmas * (t_ends - t_starts)
    cs = torch.cumsum(tau, 0)
    before_ray = torch.cat([cs.new_zeros(1), cs])[offsets[:-1]][ray_ids]
    trans = torch.exp(-(cs - tau - before_ray))
    alive = trans >= t_min if t_min > 0 else torch.ones_like(trans, dtype=torch.bool)
    weights = torch.where(alive, trans * -torch.expm1(-tau), torch.zeros_like(tau))
    out = values.new_zeros(len(counts), values.shape[1]).index_add(
        0, ray_ids, weights[:, None] * values
    )
    opacity = sigmas.new_zeros(len(counts)).index_add(0, ray_ids, weights)
    return out, opacity, weights
