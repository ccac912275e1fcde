"""VoroMesh against marching cubes of the mesh's signed distance, at equal face count.

For each shipped mesh (``assets/meshes``): ``fields3d.pipelines.voromesh.voromesh`` with
``--generators`` and ``--steps`` (targets: 10 surface samples a generator; labels: the exact
signed distance at the cells' centroids), then marching cubes of the same
:class:`~fields3d.geometry.sdf.MeshSDF` over the normalised cube ``[-1, 1]^3`` (narrow band) at
the grid resolution whose face count is nearest the VoroMesh's, and at the resolution of the
grid the generators started from (the paper's comparison: the same grid). All are scored against
the input with :func:`fields3d.geometry.mesh_metrics` (Chamfer-L1, normal consistency, F-score at
1% and 0.5% of the input's bounding-box diagonal, ``--eval-points`` samples a surface, seed 0),
and checked for watertightness and consistent winding (trimesh), with the count of edges on one
face only (holes) and of faces with area (a VoroMesh's fans over coincident Voronoi vertices add
zero-area triangles). Times: wall and process CPU seconds of each method's work (VoroMesh:
sampling, fitting, labelling and extraction; marching cubes: the signed distances and the meshing
at the chosen resolution), one run each.

Usage::

    python benchmarks/voromesh.py [--shapes spot,fandisk] [--generators 10000] [--steps 400]
                                  [--eval-points 100000] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS_DIR, environment, print_table, write_json

from fields3d.geometry import load_mesh, mesh_field, mesh_metrics
from fields3d.geometry.pointcloud import Normalization
from fields3d.geometry.sdf import MeshSDF
from fields3d.geometry.voromesh import check_surface
from fields3d.pipelines.voromesh import VoroMeshConfig, voromesh

MESHES = Path(__file__).resolve().parents[1] / "assets" / "meshes"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", help="mesh names in assets/meshes, comma-separated (default: all)")
    p.add_argument("--generators", type=int, default=10_000, help="default 10000")
    p.add_argument("--steps", type=int, default=400, help="default 400 (the paper's)")
    p.add_argument("--eval-points", type=int, default=100_000, help="default 100000")
    p.add_argument("--out", help="JSON path (default: benchmarks/results/voromesh-cpu.json)")
    return p.parse_args(argv)


def timed(fn):
    """``(result, wall seconds, process CPU seconds)`` of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def scores(verts, faces, mesh, eval_points: int) -> dict:
    m = mesh_metrics((verts, faces), mesh, n_points=eval_points, seed=0)
    checks = check_surface(verts, faces)
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, uses = np.unique(edges, axis=0, return_counts=True)
    tri = verts[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return {
        "faces": checks["faces"],
        "faces_with_area": int((area > 1e-8 * float(np.ptp(verts, axis=0).max()) ** 2).sum()),
        "boundary_edges": int((uses == 1).sum()),
        "watertight": checks["watertight"] and checks["winding_consistent"],
        "chamfer_l1": m["chamfer_l1"],
        "normal_consistency": m["normal_consistency"],
        "f_score@1%": m["f_score@1%"],
        "f_score@0.5%": m["f_score@0.5%"],
    }


def run_voromesh(path: Path, args, tmp: Path) -> dict:
    config = VoroMeshConfig(
        path, tmp / f"{path.stem}.ply", generators=args.generators, steps=args.steps, device="cpu"
    )
    result, wall, cpu = timed(lambda: voromesh(config, progress=False))
    t = result.report["timings"]
    work = t["read_s"] + t["fit_s"] + t["extract_s"]
    return {
        "verts": result.verts,
        "faces": result.faces,
        "generators": result.report["generators"]["count"],
        "grid_resolution": result.report["generators"]["grid_resolution"],
        "wall_s": work,
        "cpu_s": cpu * work / wall,  # the metrics' share of the run taken out, in proportion
    }


def marching_cubes_at(sdf: MeshSDF, resolution: int):
    def fn(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sdf(x.double().numpy()))

    verts, faces = mesh_field(fn, ((-1.0,) * 3, (1.0,) * 3), resolution, 0.0, lipschitz=1.0)
    return verts.numpy().astype(np.float64), faces.numpy()


def matching_resolution(sdf: MeshSDF, faces: int) -> tuple[int, dict]:
    """The resolution whose marching-cubes face count is nearest ``faces`` (counts grow as r^2)."""
    counts: dict[int, int] = {}

    def count(r: int) -> int:
        if r not in counts:
            counts[r] = len(marching_cubes_at(sdf, r)[1])
        return counts[r]

    r = 64
    for _ in range(4):  # Newton steps on faces ~ r^2
        r = max(8, round(r * math.sqrt(faces / max(count(r), 1))))
    while count(r + 1) <= faces:
        r += 1
    while count(r) > faces and r > 8:
        r -= 1
    best = min((r, r + 1), key=lambda q: abs(count(q) - faces))
    return best, counts


def run_shape(path: Path, args, tmp: Path) -> dict:
    mesh = load_mesh(path)
    norm = Normalization.fit(mesh.vertices)
    sdf = MeshSDF(norm.to_unit(mesh.vertices), mesh.faces)
    voro = run_voromesh(path, args, tmp)
    resolution, counts = matching_resolution(sdf, len(voro["faces"]))
    (verts, faces), wall, cpu = timed(lambda: marching_cubes_at(sdf, resolution))
    grid = voro["grid_resolution"]
    (g_verts, g_faces), g_wall, g_cpu = timed(lambda: marching_cubes_at(sdf, grid))
    return {
        "shape": path.stem,
        "input_faces": len(mesh.faces),
        "voromesh": {
            **scores(voro["verts"], voro["faces"], mesh, args.eval_points),
            "generators": voro["generators"],
            "grid_resolution": grid,
            "wall_s": voro["wall_s"],
            "cpu_s": voro["cpu_s"],
        },
        "marching_cubes": {
            **scores(norm.to_world(verts), faces, mesh, args.eval_points),
            "resolution": resolution,
            "wall_s": wall,
            "cpu_s": cpu,
            "face_counts_tried": {str(k): v for k, v in sorted(counts.items())},
        },
        "marching_cubes_same_grid": {
            **scores(norm.to_world(g_verts), g_faces, mesh, args.eval_points),
            "resolution": grid,
            "wall_s": g_wall,
            "cpu_s": g_cpu,
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.shapes.split(",") if args.shapes else sorted(p.stem for p in MESHES.glob("*.obj"))
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            r = run_shape(MESHES / f"{name}.obj", args, Path(tmp))
            results.append(r)
            for method in ("voromesh", "marching_cubes", "marching_cubes_same_grid"):
                m = r[method]
                label = "voromesh" if method == "voromesh" else f"mc {m['resolution']}^3"
                rows.append(
                    [
                        name,
                        label + (f" ({m['grid_resolution']}^3)" if method == "voromesh" else ""),
                        m["faces"],
                        m["faces_with_area"],
                        m["boundary_edges"],
                        m["watertight"],
                        f"{m['chamfer_l1']:.5f}",
                        f"{m['normal_consistency']:.4f}",
                        f"{m['f_score@1%']:.4f}",
                        f"{m['f_score@0.5%']:.4f}",
                        f"{m['wall_s']:.1f}",
                        f"{m['cpu_s']:.1f}",
                    ]
                )
            print(f"{name}: done", file=sys.stderr, flush=True)
    print_table(
        [
            "shape",
            "method (grid)",
            "faces",
            "with area",
            "open edges",
            "closed",
            "CD-L1",
            "NC",
            "F@1%",
            "F@0.5%",
            "wall s",
            "cpu s",
        ],
        rows,
    )
    payload = {
        "benchmark": "voromesh",
        "config": {
            "shapes": names,
            "generators": args.generators,
            "steps": args.steps,
            "eval_points": args.eval_points,
        },
        **environment(torch.device("cpu")),
        "results": results,
    }
    out = write_json(args.out or RESULTS_DIR / "voromesh-cpu.json", payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
