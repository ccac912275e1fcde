"""Encoding shoot-out, speed: every registered 3D encoding timed on the same points in one run.

For each encoding (default settings below: the hash grid at instant-NGP's defaults, the simplex
grid at the same L/F/T, a 128^3 x 8 dense grid and a multi-resolution tri-plane), and each
N = 2^k (default 2^18 and 2^20), three workloads:

* ``forward``          ``y = enc(x)`` under ``torch.no_grad()``.
* ``forward+backward`` ``(enc(x) * dy).sum().backward()``; parameters require grad, ``x`` not.
* ``eikonal``          ``sdf = enc(x) @ w``, ``g = d sdf / d x`` with ``create_graph=True``,
                       ``((|g| - 1)^2).mean().backward()`` (double backward into the parameters).

Also per encoding: parameter count, output width, bytes of parameters (+ their gradient and
Adam's two moments in training: x4), and on CUDA the peak memory of a forward+backward at the
largest N. The ratio row compares each encoding's forward+backward with the hash grid's, the
simplex paper's claim (target here: simplex >= 1.3x faster than our hash grid at the same L/F/T).

Usage::

    python benchmarks/encoding_types.py [--device cpu|cuda] [--sizes 18,20] [--encodings a,b]
                                   [--repeats 5] [--warmup 2] [--log2-table 19] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import sys

import torch
from _common import RESULTS_DIR, environment, fmt, measure, parse_ints, print_table, write_json

from fields3d.encodings import create

ENCODINGS = {
    "hash_grid": {
        "type": "hash_grid",
        "n_levels": 16,
        "n_features_per_level": 2,
        "log2_hashmap_size": 19,
    },
    "simplex_grid": {
        "type": "simplex_grid",
        "n_levels": 16,
        "n_features_per_level": 2,
        "log2_hashmap_size": 19,
    },
    "dense_grid": {"type": "dense_grid", "resolution": 128, "n_features": 8},
    "triplane": {
        "type": "triplane",
        "resolution": [128, 256, 512],
        "n_features": 8,
        "aggregate": "product",
    },
    "rbf": {"type": "rbf", "n_bases": 4096, "n_features": 16, "k": 8, "shape": "diagonal"},
}
WORKLOADS = ("forward", "forward+backward", "eikonal")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--sizes", default="18,20", help="exponents k of N = 2^k (default 18,20)")
    p.add_argument(
        "--encodings", default=",".join(ENCODINGS), help=f"subset of {','.join(ENCODINGS)}"
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--log2-table",
        type=int,
        help="the hash and simplex grids' log2_hashmap_size (default 19); "
        "e.g. 14 keeps every level's table in cache and times the per-point work alone",
    )
    p.add_argument(
        "--out", help="JSON result path (default benchmarks/results/encodings-<device>.json)"
    )
    return p.parse_args(argv)


def workload(name: str, enc, x: torch.Tensor, dy: torch.Tensor, head: torch.Tensor):
    """A closure running one iteration of workload ``name``."""
    params = list(enc.parameters())

    def clear() -> None:
        for p in params:
            p.grad = None

    if name == "forward":

        def run() -> None:
            with torch.no_grad():
                enc(x)
    elif name == "forward+backward":

        def run() -> None:
            clear()
            (enc(x) * dy).sum().backward()
    else:
        xg = x.detach().requires_grad_(True)

        def run() -> None:
            clear()
            (g,) = torch.autograd.grad((enc(xg) @ head).sum(), xg, create_graph=True)
            ((g.norm(dim=-1) - 1.0) ** 2).mean().backward()

    return run


def peak_cuda_mb(run, device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def bench_encoding(name: str, device: torch.device, sizes: list[int], args) -> dict:
    config = dict(ENCODINGS[name])
    if args.log2_table is not None and "log2_hashmap_size" in config:
        config["log2_hashmap_size"] = args.log2_table
    enc = create(config, device=device)
    out = {
        "config": enc.config(),
        "n_params": enc.n_params,
        "n_output_dims": enc.n_output_dims,
        "param_mb": enc.n_params * 4 / 2**20,
        "training_state_mb": enc.n_params * 16 / 2**20,
        "rows": [],
    }
    for k in sizes:
        gen = torch.Generator(device=device).manual_seed(args.seed + k)
        x = torch.rand(2**k, 3, device=device, generator=gen)
        dy = torch.randn(2**k, enc.n_output_dims, device=device, generator=gen)
        head = torch.randn(enc.n_output_dims, 1, device=device, generator=gen)
        for w in WORKLOADS:
            run = workload(w, enc, x, dy, head)
            stats = measure(run, device, repeats=args.repeats, warmup=args.warmup)
            if w == "forward+backward" and k == max(sizes):
                out["peak_cuda_mb_fwd_bwd"] = peak_cuda_mb(run, device)
            out["rows"].append({"log2_n": k, "workload": w, **stats})
            print(f"  {name} 2^{k} {w}: {fmt(stats['median_ms'])} ms", file=sys.stderr, flush=True)
    return out


def ratio_rows(results: dict) -> list[list]:
    """Each encoding's forward+backward time relative to the hash grid's (>1: faster)."""
    if "hash_grid" not in results:
        return []
    base = {
        r["log2_n"]: r["median_ms"]
        for r in results["hash_grid"]["rows"]
        if r["workload"] == "forward+backward"
    }
    rows = []
    for name, res in results.items():
        for r in res["rows"]:
            if r["workload"] == "forward+backward" and name != "hash_grid":
                rows.append([name, f"2^{r['log2_n']}", base[r["log2_n"]] / r["median_ms"]])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    sizes = parse_ints(args.sizes)
    names = [n.strip() for n in args.encodings.split(",") if n.strip()]
    unknown = [n for n in names if n not in ENCODINGS]
    if unknown:
        print(f"unknown encodings {unknown}; choose from {list(ENCODINGS)}", file=sys.stderr)
        return 2
    results = {name: bench_encoding(name, device, sizes, args) for name in names}
    print_table(
        ["encoding", "params", "outputs", "param MB", "N", "workload", "median ms", "min ms"],
        [
            [
                n,
                r["n_params"],
                r["n_output_dims"],
                r["param_mb"],
                f"2^{row['log2_n']}",
                row["workload"],
                row["median_ms"],
                row["min_ms"],
            ]
            for n, r in results.items()
            for row in r["rows"]
        ],
    )
    ratios = ratio_rows(results)
    if ratios:
        print("\nforward+backward speed relative to the hash grid (>1 = faster):")
        print_table(["encoding", "N", "hash grid ms / its ms"], ratios)
    path = write_json(
        args.out or RESULTS_DIR / f"encodings-{device.type}.json",
        {
            "benchmark": "encodings",
            "environment": environment(device),
            "sizes": sizes,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "results": results,
            "relative_to_hash_grid": [{"encoding": a, "n": b, "speedup": c} for a, b, c in ratios],
        },
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
