#!/usr/bin/env python3
"""Write assets/scans/bunny.ply: a synthetic scan of the shipped Stanford bunny.

50,000 points sampled uniformly by area (seed 0) on assets/meshes/stanford-bunny.obj with
fields3d.geometry.pointcloud.sample_mesh, no normals, no noise, stored as binary little-endian PLY
with float32 x, y, z. Deterministic: running it again rewrites the same bytes.

    .venv/bin/python scripts/make-scan.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fields3d.geometry.mesh_io import load_mesh, write_atomic
from fields3d.geometry.pointcloud import sample_mesh

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "assets" / "meshes" / "stanford-bunny.obj"
TARGET = ROOT / "assets" / "scans" / "bunny.ply"
N_POINTS = 50_000
SEED = 0


def main() -> None:
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


if __name__ == "__main__":
    main()
