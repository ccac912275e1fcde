"""Mosaic-SDF on the shipped meshes: conversion time and accuracy against a dense grid and a hash grid
holding the same number of values.

For each mesh in ``assets/meshes/`` and each size (``--sizes``, ``K x k^3``; default the paper's
1024 x 7^3 = 351,232 values and a smaller 256 x 5^3 = 32,000):

* ``mosaic``: :func:`~fields3d.geometry.mosaic_convert.mosaic_from_mesh` (surface samples, FPS,
  scales ``--overlap`` times the covering radius, default 1.5, the mesh's SDF at every lattice
  point; MeshSDF's set-up included), timed over ``--repeats``
  runs after one warm-up; then meshed by :func:`~fields3d.geometry.mosaic_convert.mesh_mosaic` at
  ``--mesh-resolution`` points along the longest side;
* ``mosaic+ft`` (the first size only, ``--finetune-steps`` > 0): the same, then fine-tuned; its time
  is the conversion's plus the fine-tuning's;
* ``dense``: the mesh's SDF sampled on an ``n^3`` grid, ``n = round(values^(1/3))`` (71^3 = 357,911
  and 32^3 = 32,768), spanning the mesh's bounding box plus one cell each side, meshed by marching
  cubes on those samples directly (timed like the mosaic, MeshSDF's set-up included);
* ``hash``: ``fields3d fit-sdf`` (:func:`~fields3d.pipelines.fit_sdf.fit_sdf`) with a hash grid of
  about the same number of parameters (12 levels of 2^14 rows x 2 features = 363,520 and
  8 x 2^11 x 2 = 32,768; base resolution 16, scale 1.5 a level; plus its 64-wide MLP) and a fixed
  short budget (``--hash-steps``, default 400 Adam steps of 8192 samples), meshed at
  ``--mesh-resolution``; its time is the whole ``fit_sdf`` call (samples, fit, meshing, IoU).

Accuracy: ``mesh_metrics`` of each mesh against the shipped one (100k samples a surface, seed 0;
distances in the shipped mesh's bounding-box diagonals). Torch runs on one thread, as the
``mosaic-sdf`` pipeline does on the CPU.

Usage::

    python benchmarks/mosaic_sdf.py [--shapes spot,cow] [--sizes 1024x7,256x5] [--repeats 3]
                                    [--mesh-resolution 256] [--finetune-steps 100]
                                    [--hash-steps 400] [--no-hash] [--overlap 1.5]
                                    [--out PATH.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS_DIR, environment, measure, print_table, write_json

from fields3d.geometry import load_mesh, mesh_metrics
from fields3d.geometry.marching_cubes import marching_cubes
from fields3d.geometry.mosaic_convert import finetune_mosaic, mesh_mosaic, mosaic_from_mesh
from fields3d.geometry.sdf import MeshSDF
from fields3d.pipelines.fit_sdf import FitSdfConfig, fit_sdf

MESH_DIR = Path(__file__).resolve().parent.parent / "assets" / "meshes"
SHAPES = ("stanford-bunny", "fandisk", "rocker-arm", "spot", "cow")
HASH = {  # values -> (levels, log2 rows): the hash grid with about that many parameters
    351232: (12, 14),
    32000: (8, 11),
}
METRICS = ("chamfer_l1", "normal_consistency", "f_score@1%", "f_score@0.5%")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--sizes", default="1024x7,256x5", help="K x k pairs (default 1024x7,256x5)")
    p.add_argument("--repeats", type=int, default=3, help="timed conversions (default 3)")
    p.add_argument("--mesh-resolution", type=int, default=256)
    p.add_argument("--finetune-steps", type=int, default=100)
    p.add_argument("--hash-steps", type=int, default=400)
    p.add_argument("--overlap", type=float, default=1.5, help="mosaic scale / FPS radius")
    p.add_argument("--no-hash", action="store_true", help="skip the hash-grid fits")
    p.add_argument("--out", help="JSON path (default benchmarks/results/mosaic_sdf-cpu.json)")
    return p.parse_args(argv)


def judge(verts, faces, mesh) -> dict:
    m = mesh_metrics((verts, faces), mesh, n_points=100_000, seed=0)
    return {k: m[k] for k in METRICS} | {"faces": int(len(faces))}


def bench_mosaic(mesh, volumes: int, k: int, args, cpu, tune: bool) -> list[dict]:
    def convert():
        return mosaic_from_mesh(mesh, volumes, k, overlap=args.overlap)

    stats = measure(convert, cpu, repeats=args.repeats, warmup=1)
    mosaic = convert()
    start = time.perf_counter()
    verts, faces, undefined = mesh_mosaic(mosaic, args.mesh_resolution)
    mesh_s = time.perf_counter() - start
    base = {"values": volumes * k**3, "size": f"{volumes}x{k}^3", "mesh_s": mesh_s}
    rows = [
        {"method": "mosaic", **base, "build": stats, "undefined_share": undefined}
        | judge(verts, faces, mesh)
    ]
    if args.finetune_steps and tune:
        start = time.perf_counter()
        before, after = finetune_mosaic(mosaic, mesh, args.finetune_steps)
        tune_s = time.perf_counter() - start
        verts, faces, undefined = mesh_mosaic(mosaic, args.mesh_resolution)
        base["mesh_s"] = time.perf_counter() - start - tune_s
        rows.append(
            {"method": "mosaic+ft", **base, "build_s": stats["median_ms"] / 1e3 + tune_s}
            | {"finetune_s": tune_s, "l1": [before, after], "undefined_share": undefined}
            | judge(verts, faces, mesh)
        )
    return rows


def bench_dense(mesh, values: int, args, cpu) -> dict:
    n = round(values ** (1 / 3))
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    spacing = float((hi - lo).max()) / (n - 3)
    origin = (lo + hi) / 2 - spacing * (n - 1) / 2
    axis = np.arange(n) * spacing
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3) + origin

    def build():
        return MeshSDF(mesh.vertices, mesh.faces)(grid).reshape(n, n, n)

    stats = measure(build, cpu, repeats=args.repeats, warmup=1)
    start = time.perf_counter()
    verts, faces = marching_cubes(
        torch.from_numpy(build()), origin=origin.tolist(), spacing=spacing
    )
    return {
        "method": "dense",
        "values": n**3,
        "size": f"{n}^3",
        "build": stats,
        "mesh_s": time.perf_counter() - start,
    } | judge(verts.numpy(), faces.numpy(), mesh)


def bench_hash(path: Path, values: int, args) -> dict:
    levels, log2 = HASH[values]
    encoding = {"type": "hash_grid", "n_levels": levels, "log2_hashmap_size": log2}
    encoding |= {"n_features_per_level": 2, "base_resolution": 16, "per_level_scale": 1.5}
    with tempfile.TemporaryDirectory() as tmp:
        config = FitSdfConfig(
            path,
            tmp,
            encoding=encoding,
            steps=args.hash_steps,
            mc_resolution=args.mesh_resolution,
            device="cpu",
        )
        start = time.perf_counter()
        result = fit_sdf(config, progress=False)
        seconds = time.perf_counter() - start
    m = result.metrics.get("mesh_metrics") or dict.fromkeys(METRICS)  # None: no surface
    return {
        "method": "hash",
        "values": result.metrics["encoding_n_params"],
        "size": f"{levels}x2^{log2}x2",
        "n_params": result.n_params,
        "build_s": seconds,
        "train_s": result.train_seconds,
        "iou": result.iou,
        "faces": result.metrics["mesh"]["faces"],
    } | {k: m[k] for k in METRICS}


def seconds(row: dict) -> float:
    return row["build"]["median_ms"] / 1e3 if "build" in row else row["build_s"]


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows = []
    for shape in args.shapes.split(","):
        path = MESH_DIR / f"{shape}.obj"
        mesh = load_mesh(path)
        for volumes, k in sizes:
            found = bench_mosaic(mesh, volumes, k, args, cpu, (volumes, k) == sizes[0])
            found.append(bench_dense(mesh, volumes * k**3, args, cpu))
            if not args.no_hash and volumes * k**3 in HASH:
                found.append(bench_hash(path, volumes * k**3, args))
            for row in found:
                row["shape"] = shape
                print(
                    f"  {shape} {row['method']} {row['size']}: {seconds(row):.2f} s, "
                    f"CD {row['chamfer_l1']}",
                    file=sys.stderr,
                    flush=True,
                )
            rows += found
    table = [
        [r["shape"], r["method"], r["size"], r["values"], seconds(r), r["chamfer_l1"]]
        + [r["normal_consistency"], r["f_score@1%"], r["f_score@0.5%"], r.get("undefined_share")]
        for r in rows
    ]
    headers = ["shape", "method", "size", "values", "build s", "CD-L1", "NC", "F@1%", "F@0.5%"]
    print_table(headers + ["undefined"], table)
    payload = {
        "config": vars(args),
        **environment(cpu),
        "rows": rows,
    }
    out = write_json(args.out or RESULTS_DIR / "mosaic_sdf-cpu.json", payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
