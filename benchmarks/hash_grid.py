"""Hash-grid encoding: fields3d's core against the pure-torch reference, measured in the same run.

Config: 3D, L=16 levels, F=2 features, T=2^19 rows per level, base resolution 16, per-level
scale 1.5, float32 (``--log2-table K``: 2^K rows a level instead; a table that fits the caches
gives the op's compute floor). For each N = 2^k three workloads, each for ours and the
reference:

* ``forward``          ``y = enc(x)`` under ``torch.no_grad()``.
* ``forward+backward`` ``y = enc(x); (y * dy).sum().backward()`` with a fixed random ``dy``;
                       the table requires grad, ``x`` does not.
* ``eikonal``          ``x`` requires grad; ``sdf = enc(x) @ w`` (a fixed linear head),
                       ``g = d sdf / d x`` with ``create_graph=True``,
                       ``loss = ((|g| - 1)^2).mean(); loss.backward()`` (second order: the table
                       gets gradients through ``g``).

Forward rows also give an effective bandwidth, ``bytes / median time``, with
``bytes = N*L*2^D*F*4`` (table reads: 2^D corners per level, F float32 each)
``+ N*D*4`` (positions read) ``+ N*L*F*4`` (features written). Hashed-level reads that hit
cache are still counted, so this is a figure to compare runs with, not a hardware measurement.

Points (``--points``): ``uniform`` (default) independent uniform points in ``[0, 1]^3``, in no
order: the op's worst case; ``rays`` a NeRF-like batch, 64 evenly spaced samples along each of
N / 64 rays through the cube, in ray order (consecutive points are neighbours); ``sorted`` the
uniform points sorted along a Morton curve (10 bits an axis), the best order a caller could give.

Usage::

    python benchmarks/hash_grid.py [--device cpu|cuda] [--sizes 16,17,18] [--repeats 5]
                                   [--ref-repeats 3] [--warmup 2] [--no-reference]
                                   [--points uniform|rays|sorted] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch
from _common import (
    RESULTS_DIR,
    environment,
    fmt,
    measure,
    parse_ints,
    print_table,
    usable_device,
    write_json,
)

from fields3d.encodings import HashGrid, hash_grid_encode
from fields3d.encodings.reference import hash_grid_reference

GRID = dict(
    n_input_dims=3,
    n_levels=16,
    n_features_per_level=2,
    log2_hashmap_size=19,
    base_resolution=16,
    per_level_scale=1.5,
)
DEFAULT_SIZES = {"cpu": "16,17,18", "cuda": "16-22"}
WORKLOADS = ("forward", "forward+backward", "eikonal")
IMPLS = {"ours": hash_grid_encode, "reference": hash_grid_reference}
POINTS = ("uniform", "rays", "sorted")
BYTES_FORMULA = "N*L*2^D*F*4 (table reads) + N*D*4 (positions) + N*L*F*4 (features written)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--sizes",
        help="exponents k of N = 2^k, e.g. 16,17,18 or 16-22 "
        "(default: 16,17,18 on cpu, 16-22 on cuda)",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs of ours (default 5)")
    p.add_argument(
        "--ref-repeats", type=int, default=3, help="timed runs of the reference (default 3)"
    )
    p.add_argument(
        "--warmup", type=int, default=2, help="untimed runs of ours first (reference: 1)"
    )
    p.add_argument("--no-reference", action="store_true", help="time ours only")
    p.add_argument(
        "--log2-table", type=int, default=GRID["log2_hashmap_size"], help="rows a level: 2^K"
    )
    p.add_argument(
        "--points",
        choices=POINTS,
        default="uniform",
        help="order of the points: uniform (none), rays (NeRF-like), sorted (Morton)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", help="JSON result path (default benchmarks/results/hash_grid-<device>.json)"
    )
    return p.parse_args(argv)


def make_workload(
    name: str,
    enc: Callable,
    x: torch.Tensor,
    params: torch.Tensor,
    config,
    dy: torch.Tensor,
    head: torch.Tensor,
) -> Callable[[], None]:
    """A closure running one iteration of workload ``name`` with encoding function ``enc``."""
    if name == "forward":

        def run() -> None:
            with torch.no_grad():
                enc(x, params, config)
    elif name == "forward+backward":

        def run() -> None:
            params.grad = None
            (enc(x, params, config) * dy).sum().backward()
    elif name == "eikonal":
        xg = x.detach().requires_grad_(True)

        def run() -> None:
            params.grad = xg.grad = None
            sdf = enc(xg, params, config) @ head
            (g,) = torch.autograd.grad(sdf.sum(), xg, create_graph=True)
            ((g.norm(dim=-1) - 1.0) ** 2).mean().backward()
    else:
        raise ValueError(f"unknown workload {name!r}; expected one of {WORKLOADS}")
    return run


def make_points(kind: str, n: int, device, gen) -> torch.Tensor:
    """``(n, 3)`` points in ``[0, 1]^3`` in the order ``kind`` names (see the module doc)."""
    if kind == "rays":
        rays, steps = max(1, n // 64), 64
        start = torch.rand(rays, 1, 3, device=device, generator=gen)
        end = torch.rand(rays, 1, 3, device=device, generator=gen)
        t = torch.linspace(0, 1, steps, device=device).view(1, steps, 1)
        return (start + t * (end - start)).reshape(-1, 3)[:n].contiguous()
    x = torch.rand(n, 3, device=device, generator=gen)
    if kind == "sorted":
        q = (x * 1023).long()
        code = torch.zeros(n, dtype=torch.long, device=device)
        for bit in range(10):
            for axis in range(3):
                code |= ((q[:, axis] >> bit) & 1) << (3 * bit + axis)
        x = x[torch.argsort(code)].contiguous()
    return x


def forward_bytes(n: int, config) -> int:
    d, lv, f = config.n_input_dims, config.n_levels, config.n_features_per_level
    return n * lv * 2**d * f * 4 + n * d * 4 + n * lv * f * 4


def time_impl(impl: str, run: Callable[[], None], device: torch.device, args) -> dict:
    """Stats of one implementation, or ``{"error": ...}`` if it ran out of memory."""
    repeats, warmup = (args.repeats, args.warmup) if impl == "ours" else (args.ref_repeats, 1)
    try:
        return measure(run, device, repeats=repeats, warmup=warmup)
    except torch.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        return {"error": f"out of memory: {str(exc).splitlines()[0]}"}


def parity(x: torch.Tensor, params: torch.Tensor, config) -> float:
    """Max |ours - reference| of the forward features (both impls must agree to compare them)."""
    with torch.no_grad():
        return (
            (hash_grid_encode(x, params, config) - hash_grid_reference(x, params, config))
            .abs()
            .max()
            .item()
        )


def bench_size(k: int, grid: HashGrid, device: torch.device, impls: list[str], args) -> list[dict]:
    n, config, params = 2**k, grid.spec, grid.params
    gen = torch.Generator(device=device).manual_seed(args.seed + k)
    x = make_points(args.points, n, device, gen)
    dy = torch.randn(n, config.n_output_dims, device=device, generator=gen)
    head = torch.randn(config.n_output_dims, 1, device=device, generator=gen)
    diff = parity(x, params, config) if "reference" in impls else None
    rows = []
    for name in WORKLOADS:
        row = {"log2_n": k, "n": n, "workload": name, "max_abs_diff_forward": diff}
        for impl in impls:
            stats = time_impl(
                impl, make_workload(name, IMPLS[impl], x, params, config, dy, head), device, args
            )
            if name == "forward" and "median_ms" in stats:
                stats["gb_per_s"] = forward_bytes(n, config) / (stats["median_ms"] * 1e-3) / 1e9
            row[impl] = stats
        ours, ref = row.get("ours", {}), row.get("reference", {})
        if "median_ms" in ours and "median_ms" in ref:
            row["speedup"] = ref["median_ms"] / ours["median_ms"]
        rows.append(row)
        done = ", ".join(f"{i} {fmt(row[i].get('median_ms'))} ms" for i in impls)
        print(f"  2^{k} {name}: {done}", file=sys.stderr, flush=True)
    return rows


def table_rows(rows: list[dict]) -> list[list]:
    out = []
    for r in rows:
        ours, ref = r["ours"], r.get("reference", {})
        out.append(
            [
                f"2^{r['log2_n']}",
                r["workload"],
                ours.get("median_ms"),
                _spread(ours),
                ref.get("median_ms", "OOM" if "error" in ref else None),
                _spread(ref),
                r.get("speedup"),
                ours.get("gb_per_s"),
            ]
        )
    return out


def _spread(stats: dict) -> str | None:
    if "median_ms" not in stats:
        return None
    return f"{fmt(stats['min_ms'])}-{fmt(stats['max_ms'])}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = usable_device(args.device)
    if device is None:
        return 2
    sizes = parse_ints(args.sizes or DEFAULT_SIZES[device.type])
    impls = ["ours"] + ([] if args.no_reference else ["reference"])
    torch.manual_seed(args.seed)
    grid = HashGrid(**dict(GRID, log2_hashmap_size=args.log2_table), device=device)
    rows = [row for k in sizes for row in bench_size(k, grid, device, impls, args)]

    env = environment(device)
    print(
        f"\nhash grid L16 F2 T=2^{args.log2_table} base 16 scale 1.5 fp32, 3D, {args.points} points, "
        f"on {env['device']['name']} "
        f"({env['versions'].get('threads')} core threads, {torch.get_num_threads()} torch threads)"
    )
    print_table(
        [
            "N",
            "workload",
            "ours ms",
            "ours min-max",
            "reference ms",
            "ref min-max",
            "speed-up",
            "ours GB/s",
        ],
        table_rows(rows),
    )

    payload = {
        "benchmark": "hash_grid",
        "config": dict(grid.spec.to_dict(), dtype="float32", n_params=grid.spec.n_params),
        **env,
        "threads": {"core": env["versions"].get("threads"), "torch": torch.get_num_threads()},
        "settings": {
            "sizes_log2": sizes,
            "repeats": args.repeats,
            "ref_repeats": args.ref_repeats,
            "warmup": args.warmup,
            "ref_warmup": 1,
            "seed": args.seed,
            "points": args.points,
            "timing": "wall clock per run, CUDA synchronised before and after",
        },
        "forward_bytes_formula": BYTES_FORMULA,
        "rows": rows,
    }
    out = write_json(args.out or RESULTS_DIR / f"hash_grid-{device.type}.json", payload)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
