#!/usr/bin/env python3
"""Write the shipped scans of assets/scans/: uniform samples and virtual scanner scans.

- bunny.ply: 50,000 points sampled uniformly by area (seed 0) on assets/meshes/stanford-bunny.obj
  with fields3d.geometry.pointcloud.sample_mesh, no normals, no noise, binary little-endian PLY
  with float32 x, y, z.
- The virtual scans (SCANS below): fields3d.geometry.scan.virtual_scan of a shipped mesh with the
  settings listed, written by save_scan (float32 x y z and the view direction vx vy vz).

Deterministic: running it again rewrites the same bytes. With --mesh and --out it scans any mesh
with the settings given on the command line instead.

    .venv/bin/python scripts/make-scan.py
    .venv/bin/python scripts/make-scan.py --mesh part.obj --out part-scan.ply --views 6 --noise 0.004
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fields3d.geometry.mesh_io import load_mesh, write_atomic
from fields3d.geometry.pointcloud import sample_mesh
from fields3d.geometry.scan import ScanSettings, save_scan, virtual_scan

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "assets" / "meshes" / "stanford-bunny.obj"
TARGET = ROOT / "assets" / "scans" / "bunny.ply"
N_POINTS = 50_000
SEED = 0


# name -> (mesh, settings, what it imitates)
SCANS = {
    "bunny-scanner.ply": (
        "stanford-bunny.obj",
        ScanSettings(
            views=12,
            side=256,
            noise=0.003,
            grazing=(60.0, 80.0),
            misregistration=(0.1, 0.001),
            outliers=0.005,
            max_points=50_000,
            seed=0,
        ),
        "a 12-view structured-light scan: depth noise, grazing dropout, slight misregistration, "
        "0.5% outliers",
    ),
    "spot-sparse.ply": (
        "spot.obj",
        ScanSettings(
            views=8, side=200, noise=0.002, grazing=(70.0, 85.0), max_points=5_000, seed=0
        ),
        "a sparse 5k-point scan from 8 views",
    ),
    "fandisk-occluded.ply": (
        "fandisk.obj",
        ScanSettings(
            views=3, side=256, noise=0.002, grazing=(65.0, 85.0), max_points=30_000, seed=0
        ),
        "3 views only: large occlusion holes",
    ),
}


def uniform_bunny() -> None:
    points = sample_mesh(load_mesh(SOURCE), N_POINTS, seed=SEED).points.astype("<f4")
    header = "\n".join(
        [
            "ply",
            "format binary_little_endian 1.0",
            f"comment {N_POINTS} area-weighted samples (seed {SEED}) of assets/meshes/{SOURCE.name}, "
            "written by scripts/make-scan.py",
            f"element vertex {N_POINTS}",
            "property float x",
            "property float y",
            "property float z",
            "end_header",
        ]
    )
    write_atomic(TARGET, (header + "\n").encode("ascii") + np.ascontiguousarray(points).tobytes())
    print(f"wrote {TARGET.relative_to(ROOT)}: {N_POINTS} points, {TARGET.stat().st_size:,} bytes")


def shipped_scans() -> None:
    for name, (mesh, settings, what) in SCANS.items():
        scan = virtual_scan(load_mesh(ROOT / "assets" / "meshes" / mesh), settings)
        path = save_scan(TARGET.parent / name, scan, f"{what}; of assets/meshes/{mesh}")
        print(f"wrote {path.relative_to(ROOT)}: {len(scan.points)} points ({what})")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mesh", help="a mesh to scan (default: write the shipped scans)")
    p.add_argument("--out", help="the PLY to write (with --mesh)")
    defaults = ScanSettings()
    for name in ("views", "side", "seed"):
        p.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    for name in ("fov", "distance", "noise", "outliers"):
        p.add_argument(f"--{name}", type=float, default=getattr(defaults, name))
    p.add_argument("--grazing", type=float, nargs=2, default=defaults.grazing)
    p.add_argument("--misregistration", type=float, nargs=2, default=defaults.misregistration)
    p.add_argument("--max-points", type=int)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.mesh is None:
        uniform_bunny()
        shipped_scans()
        return
    if args.out is None:
        raise SystemExit("--out is needed with --mesh")
    settings = ScanSettings(
        views=args.views,
        side=args.side,
        fov=args.fov,
        distance=args.distance,
        noise=args.noise,
        grazing=tuple(args.grazing),
        misregistration=tuple(args.misregistration),
        outliers=args.outliers,
        max_points=args.max_points,
        seed=args.seed,
    )
    scan = virtual_scan(load_mesh(args.mesh), settings)
    print(f"wrote {save_scan(args.out, scan)}: {len(scan.points)} points")


if __name__ == "__main__":
    main()
