"""Marching cubes: fields3d's core against scikit-image, and mesh_field narrow band against dense.

Volumes: signed distances sampled on ``n^3`` float32 grids (index coordinates), a sphere of radius
``0.35 n`` and a torus of radii ``0.3 n`` and ``0.1 n``, centred off the grid points. For each
size and shape, ``fields3d.geometry.marching_cubes(volume)`` (the volume already on the device)
against ``skimage.measure.marching_cubes(volume, 0.0)`` (Lewiner, the default; on the CPU, from a
numpy array), with vertex counts compared: both put one vertex on each crossing edge.

``mesh_field``: the sphere SDF ``|x| - 0.6`` over ``[-1, 1]^3`` at ``--field-size`` points per
axis, narrow band (coarse to fine) against dense (every grid point evaluated), with the number of
field evaluations; the meshes must agree in size.

Usage::

    python benchmarks/marching_cubes.py [--device cpu|cuda] [--sizes 128,256,512] [--repeats 5]
                                        [--ref-repeats 3] [--field-size 512] [--no-reference]
                                        [--no-field] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
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

from fields3d.geometry.marching_cubes import marching_cubes, mesh_field

DEFAULT_SIZES = {"cpu": "128,256,512", "cuda": "512,1024"}
SHAPES = ("sphere", "torus")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--sizes", help="grid sizes n (n^3 volumes), default 128,256,512 on cpu, 512,1024 on cuda"
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs of ours (default 5)")
    p.add_argument(
        "--ref-repeats", type=int, default=3, help="timed runs of scikit-image (default 3)"
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument(
        "--ref-max-size", type=int, default=512, help="largest n scikit-image runs at (default 512)"
    )
    p.add_argument("--no-reference", action="store_true", help="time ours only")
    p.add_argument("--field-size", type=int, default=512, help="mesh_field grid size (default 512)")
    p.add_argument(
        "--field-repeats", type=int, default=2, help="timed mesh_field runs, each mode (default 2)"
    )
    p.add_argument("--no-field", action="store_true", help="skip the mesh_field rows")
    p.add_argument(
        "--out", help="JSON result path (default benchmarks/results/marching_cubes-<device>.json)"
    )
    return p.parse_args(argv)


def sdf_volume(shape: str, n: int, device: torch.device) -> torch.Tensor:
    """``(n, n, n)`` float32 signed distance in index units, built slab by slab (little extra memory)."""
    axis = torch.arange(n, dtype=torch.float32, device=device) - (n - 1) / 2 + 0.31
    y, z = torch.meshgrid(axis, axis, indexing="ij")
    volume = torch.empty((n, n, n), dtype=torch.float32, device=device)
    for i in range(n):
        x = axis[i]
        if shape == "sphere":
            volume[i] = (x * x + y * y + z * z).sqrt() - 0.35 * n
        else:
            ring = (x * x + y * y).sqrt() - 0.3 * n
            volume[i] = (ring * ring + z * z).sqrt() - 0.1 * n
    return volume


def time_ours(volume: torch.Tensor, device: torch.device, args) -> tuple[dict, int, int]:
    verts, faces = marching_cubes(volume)
    stats = measure(
        lambda: marching_cubes(volume), device, repeats=args.repeats, warmup=args.warmup
    )
    return stats, verts.shape[0], faces.shape[0]


def time_skimage(volume: torch.Tensor, args) -> tuple[dict, int, int]:
    from skimage import measure as skmeasure

    array = np.ascontiguousarray(volume.cpu().numpy())
    verts, faces, _, _ = skmeasure.marching_cubes(array, 0.0)
    stats = measure(
        lambda: skmeasure.marching_cubes(array, 0.0),
        torch.device("cpu"),
        repeats=args.ref_repeats,
        warmup=args.warmup,
    )
    return stats, verts.shape[0], faces.shape[0]


def bench_volume(shape: str, n: int, device: torch.device, args) -> dict:
    volume = sdf_volume(shape, n, device)
    ours, n_verts, n_faces = time_ours(volume, device, args)
    row = {"shape": shape, "n": n, "verts": n_verts, "faces": n_faces, "ours": ours}
    if not args.no_reference and n <= args.ref_max_size:
        ref, ref_verts, ref_faces = time_skimage(volume, args)
        row.update(
            skimage=ref,
            skimage_verts=ref_verts,
            skimage_faces=ref_faces,
            speedup=ref["median_ms"] / ours["median_ms"],
            same_vertex_count=ref_verts == n_verts,
        )
    print(
        f"  {shape} {n}^3: ours {fmt(ours['median_ms'])} ms, skimage "
        f"{fmt(row.get('skimage', {}).get('median_ms'))} ms",
        file=sys.stderr,
        flush=True,
    )
    del volume
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


class CountedSphere:
    """``|x| - 0.6``, counting evaluated points."""

    def __init__(self) -> None:
        self.points = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.points += x.shape[0]
        return x.norm(dim=-1) - 0.6


def bench_field(device: torch.device, args) -> list[dict]:
    bounds = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
    rows = []
    for narrow in (True, False):
        fn = CountedSphere()
        verts, faces = mesh_field(fn, bounds, args.field_size, device=device, narrow_band=narrow)
        evaluations = fn.points

        def run(fn: Callable = fn, narrow=narrow) -> None:
            mesh_field(fn, bounds, args.field_size, device=device, narrow_band=narrow)

        stats = measure(run, device, repeats=args.field_repeats, warmup=0)
        rows.append(
            {
                "mode": "narrow band" if narrow else "dense",
                "n": args.field_size,
                "evaluations": evaluations,
                "evaluated_fraction": evaluations / args.field_size**3,
                "verts": verts.shape[0],
                "faces": faces.shape[0],
                "stats": stats,
            }
        )
        print(
            f"  mesh_field {rows[-1]['mode']} {args.field_size}^3: {fmt(stats['median_ms'])} ms, "
            f"{evaluations} evaluations",
            file=sys.stderr,
            flush=True,
        )
    rows[0]["speedup_vs_dense"] = rows[1]["stats"]["median_ms"] / rows[0]["stats"]["median_ms"]
    rows[0]["same_mesh_size"] = (rows[0]["verts"], rows[0]["faces"]) == (
        rows[1]["verts"],
        rows[1]["faces"],
    )
    return rows


def _spread(stats: dict | None) -> str | None:
    if not stats:
        return None
    return f"{fmt(stats['min_ms'])}-{fmt(stats['max_ms'])}"


def volume_table(rows: list[dict]) -> list[list]:
    return [
        [
            f"{r['n']}^3",
            r["shape"],
            r["verts"],
            r["faces"],
            r["ours"]["median_ms"],
            _spread(r["ours"]),
            r.get("skimage", {}).get("median_ms"),
            _spread(r.get("skimage")),
            r.get("speedup"),
            r.get("same_vertex_count"),
        ]
        for r in rows
    ]


def field_table(rows: list[dict]) -> list[list]:
    return [
        [
            f"{r['n']}^3",
            r["mode"],
            r["evaluations"],
            f"{100 * r['evaluated_fraction']:.2f}%",
            r["verts"],
            r["faces"],
            r["stats"]["median_ms"],
            _spread(r["stats"]),
            r.get("speedup_vs_dense"),
        ]
        for r in rows
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = usable_device(args.device)
    if device is None:
        return 2
    sizes = parse_ints(args.sizes or DEFAULT_SIZES[device.type])
    rows = [bench_volume(shape, n, device, args) for n in sizes for shape in SHAPES]
    field_rows = [] if args.no_field else bench_field(device, args)

    env = environment(device)
    print(
        f"\nmarching cubes, float32 SDF volumes, level 0, on {env['device']['name']} "
        f"({env['versions'].get('threads')} core threads, {torch.get_num_threads()} torch threads)"
    )
    print_table(
        [
            "volume",
            "shape",
            "verts",
            "faces",
            "ours ms",
            "ours min-max",
            "skimage ms",
            "skimage min-max",
            "speed-up",
            "same V",
        ],
        volume_table(rows),
    )
    if field_rows:
        print(
            f"\nmesh_field, sphere SDF |x| - 0.6 over [-1, 1]^3, {args.field_size} points per axis"
        )
        print_table(
            [
                "grid",
                "mode",
                "evaluations",
                "of grid",
                "verts",
                "faces",
                "ms",
                "min-max",
                "speed-up",
            ],
            field_table(field_rows),
        )

    payload = {
        "benchmark": "marching_cubes",
        "config": {
            "dtype": "float32",
            "level": 0.0,
            "shapes": {"sphere": "radius 0.35 n", "torus": "radii 0.3 n, 0.1 n"},
            "field": "|x| - 0.6 over [-1, 1]^3",
            "reference": "skimage.measure.marching_cubes (lewiner), CPU, numpy float32",
        },
        **env,
        "threads": {"core": env["versions"].get("threads"), "torch": torch.get_num_threads()},
        "settings": {
            "sizes": sizes,
            "repeats": args.repeats,
            "ref_repeats": args.ref_repeats,
            "warmup": args.warmup,
            "field_size": args.field_size,
            "field_repeats": args.field_repeats,
            "timing": "wall clock per run, CUDA synchronised before and after",
        },
        "rows": rows,
        "mesh_field": field_rows,
    }
    out = write_json(args.out or RESULTS_DIR / f"marching_cubes-{device.type}.json", payload)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
