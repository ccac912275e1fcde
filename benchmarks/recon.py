"""Reconstruction quality and time per method on the shipped meshes, from clouds without normals.

For each mesh in ``assets/meshes/`` and each input kind, a cloud is sampled on the surface
(``sample_mesh``, seed ``--seed``; its normals are dropped) and written to a temporary ``.npy``:

* ``clean``  50k points on the surface,
* ``noisy``  50k points plus Gaussian noise, sigma = 0.5% of the mesh's bounding-box diagonal,
* ``sparse`` 5k points,

and, on request (``--inputs``), virtual scans (``fields3d.geometry.scan.virtual_scan``, seed
``--seed``; what scanners make: views, occlusion, depth noise, grazing dropout):

* ``scanner``  12 views, noise 0.003 radii, dropout 60-80 degrees, 0.1 degree / 0.001 radii
  misregistration per view, 50k points (as ``assets/scans/bunny-scanner.ply``),
* ``occluded`` 3 views only (large holes), noise 0.002, 30k points,
* ``outliers`` 12 views, noise 0.002, 2% outliers in the box, 50k points.

The virtual scans are written as PLY with each point's view direction (``save_scan``), which
``recon`` reads; the other clouds as ``.npy``. Each method reconstructs it through
``fields3d.pipelines.recon.reconstruct`` (no picture, no ground truth); the wall time of that
call is recorded, then ``mesh_metrics`` (100k samples a surface, seed 0; distances in
ground-truth bounding-box diagonals) compares the mesh with the shipped one, and the mesh is
checked for being watertight (every edge shared by two faces). ``--keep-meshes DIR`` keeps each
mesh as ``DIR/<shape>-<input>-<method>.ply`` (``benchmarks/recon_pictures.py`` draws the worst). Goals, checked for every method other than Poisson against Poisson on the same shape
and input (printed PASS/MISS, never asserted):

* clean:  CD-L1 within 10% of Poisson's and F@0.5% >= 0.98,
* noisy:  NC >= 0.95 and CD-L1 <= Poisson's,
* sparse: F@1% >= 0.95,
* virtual scans: F@1% >= 0.97 and NC >= Poisson's,
* every input: reconstruct wall time <= 60 s.

Usage::

    python benchmarks/recon.py [--shapes stanford-bunny,cow] [--inputs clean,noisy,sparse]
                               [--methods gridpull,poisson,neural] [--device auto|cpu|cuda]
                               [--resolution 256] [--threads N] [--seed 1] [--out PATH.json]
                               [--keep-meshes DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import trimesh
from _common import RESULTS_DIR, environment, print_table, write_json

from fields3d.geometry.mesh_io import load_mesh
from fields3d.geometry.metrics import mesh_metrics
from fields3d.geometry.pointcloud import sample_mesh
from fields3d.geometry.scan import ScanSettings, save_scan, virtual_scan
from fields3d.pipelines._common import resolve_device
from fields3d.pipelines.recon.pipeline import METHODS, ReconConfig, reconstruct

MESH_DIR = Path(__file__).resolve().parent.parent / "assets" / "meshes"
SHAPES = ("stanford-bunny", "fandisk", "rocker-arm", "spot", "cow")
INPUTS = {
    "clean": (50_000, 0.0),
    "noisy": (50_000, 0.005),
    "sparse": (5_000, 0.0),
}  # points, noise / diag
# Virtual scans (fields3d.geometry.scan): what scanners make, as scripts/make-scan.py ships them.
SCANS = {
    "scanner": ScanSettings(
        views=12,
        noise=0.003,
        grazing=(60.0, 80.0),
        misregistration=(0.1, 0.001),
        max_points=50_000,
    ),
    "occluded": ScanSettings(views=3, noise=0.002, grazing=(65.0, 85.0), max_points=30_000),
    "outliers": ScanSettings(
        views=12, noise=0.002, grazing=(60.0, 80.0), outliers=0.02, max_points=50_000
    ),
}
KINDS = (*INPUTS, *SCANS)
DEFAULT_RESOLUTION = {f.name: f.default for f in dataclasses.fields(ReconConfig)}["resolution"]
TIME_GOAL_S = 60.0
METRIC_KEYS = {
    "cd_l1": "chamfer_l1",
    "cd_l2": "chamfer_l2",
    "nc": "normal_consistency",
    "f1": "f_score@1%",
    "f05": "f_score@0.5%",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--shapes", default=",".join(SHAPES), help=f"comma-separated (default {','.join(SHAPES)})"
    )
    p.add_argument(
        "--inputs",
        default=",".join(INPUTS),
        help=f"comma-separated from {','.join(KINDS)} (default clean,noisy,sparse)",
    )
    p.add_argument(
        "--methods",
        default="gridpull,poisson",
        help="gridpull, poisson, neural (default gridpull,poisson)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--resolution",
        type=int,
        default=DEFAULT_RESOLUTION,
        help=f"ReconConfig.resolution (default {DEFAULT_RESOLUTION}; Poisson depth ceil(log2))",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="torch.set_num_threads first (default: torch's choice); on a "
        "loaded machine fewer threads than cores avoids stalls at every parallel op",
    )
    p.add_argument(
        "--seed", type=int, default=1, help="seed of the input clouds (default 1; metrics use 0)"
    )
    p.add_argument(
        "--out", help="JSON result path (default benchmarks/results/recon-<device>.json)"
    )
    p.add_argument("--keep-meshes", help="keep every mesh in this folder as SHAPE-INPUT-METHOD.ply")
    args = p.parse_args(argv)
    for name, allowed in (("shapes", SHAPES), ("inputs", KINDS), ("methods", METHODS)):
        values = [v.strip() for v in getattr(args, name).split(",") if v.strip()]
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            p.error(f"--{name}: unknown {bad or 'empty'}; choose from {', '.join(allowed)}")
        setattr(args, name, values)
    return args


def make_cloud(mesh, kind: str, seed: int, folder: Path) -> Path:
    """Sample input ``kind`` on ``mesh`` and write its points (no normals) to ``folder/<kind>.npy``,
    or scan it (the virtual scans) into ``folder/<kind>.ply`` with the view directions."""
    if kind in SCANS:
        scan = virtual_scan(mesh, dataclasses.replace(SCANS[kind], seed=seed))
        return save_scan(folder / f"{kind}.ply", scan)
    else:
        n, noise = INPUTS[kind]
        diagonal = float(np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]))
        points = sample_mesh(mesh, n, seed=seed, noise=noise * diagonal).points
    path = folder / f"{kind}.npy"
    np.save(path, np.ascontiguousarray(points, dtype=np.float64))
    return path


def run_one(cloud: Path, gt, method: str, args, folder: Path) -> dict:
    """Reconstruct ``cloud`` with ``method``; time, faces and metrics against ``gt`` (or the error)."""
    config = ReconConfig(
        input=cloud,
        output=folder / f"{method}-mesh.ply",
        method=method,
        device=args.device,
        resolution=args.resolution,
        picture=False,
        gt=None,
        seed=0,
    )
    start = time.perf_counter()
    try:
        result = reconstruct(config, progress=False)
    except Exception as exc:
        traceback.print_exc()
        return {
            "time_s": time.perf_counter() - start,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    elapsed = time.perf_counter() - start
    row = {
        "time_s": elapsed,
        "faces": len(result.faces),
        "watertight": bool(
            trimesh.Trimesh(result.verts, result.faces, process=False).is_watertight
        ),
        "input_info": plain(result.report.get("input")),
        "vertices": len(result.verts),
        "timings": result.report.get("timings"),
        "method_info": plain(result.report.get("method")),
    }
    try:
        row["metrics"] = mesh_metrics((result.verts, result.faces), gt, n_points=100_000, seed=0)
    except Exception as exc:
        row["error"] = f"metrics: {type(exc).__name__}: {exc}"
    return row


def plain(obj):
    """``obj`` with numpy scalars and arrays turned into Python numbers and lists (for the JSON)."""
    return json.loads(
        json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    )


def git_state() -> dict:
    """The commit the library was imported at, and the library files that differ from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], cwd=root, capture_output=True, text=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD"),
        "changed": git("status", "--porcelain", "--", "fields3d").splitlines(),
    }


def bench_shape(shape: str, args) -> list[dict]:
    gt = load_mesh(MESH_DIR / f"{shape}.obj")
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"recon-{shape}-") as tmp:
        folder = Path(tmp)
        for kind in args.inputs:
            cloud = make_cloud(gt, kind, args.seed, folder)
            for method in args.methods:
                row = {
                    "shape": shape,
                    "input": kind,
                    "method": method,
                    **run_one(cloud, gt, method, args, folder),
                }
                mesh = folder / f"{method}-mesh.ply"
                if args.keep_meshes and "faces" in row and mesh.exists():
                    keep = Path(args.keep_meshes) / f"{shape}-{kind}-{method}.ply"
                    keep.parent.mkdir(parents=True, exist_ok=True)
                    mesh.replace(keep)
                rows.append(row)
                m = row.get("metrics", {})
                print(
                    f"  {shape} {kind} {method}: {row['time_s']:.1f} s, CD-L1 {m.get('chamfer_l1', float('nan')):.5f}"
                    f"{'  ERROR ' + row['error'] if 'error' in row else ''}",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


def metric(row: dict | None, key: str) -> float | None:
    return None if row is None else row.get("metrics", {}).get(METRIC_KEYS[key])


def table_rows(rows: list[dict]) -> list[list]:
    return [
        [
            r["shape"],
            r["input"],
            r["method"],
            *(metric(r, k) for k in METRIC_KEYS),
            r["time_s"],
            r.get("faces", "ERR"),
            {True: "yes", False: "no"}.get(r.get("watertight"), "-"),
        ]
        for r in rows
    ]


def goal_checks(kind: str, row: dict, ref: dict | None) -> list[tuple[str, bool | None]]:
    """``(description, passed)`` per goal for ``row`` against the Poisson row ``ref``; None: no data."""

    def cmp(value, bound, op):
        return None if value is None or bound is None else op(value, bound)

    ge, le = (lambda a, b: a >= b), (lambda a, b: a <= b)
    cd, ref_cd = metric(row, "cd_l1"), metric(ref, "cd_l1")
    if kind == "clean":
        checks = [
            ("CD-L1 <= 1.1x Poisson", cmp(cd, None if ref_cd is None else 1.1 * ref_cd, le)),
            ("F@0.5% >= 0.98", cmp(metric(row, "f05"), 0.98, ge)),
        ]
    elif kind == "noisy":
        checks = [
            ("NC >= 0.95", cmp(metric(row, "nc"), 0.95, ge)),
            ("CD-L1 <= Poisson", cmp(cd, ref_cd, le)),
        ]
    elif kind in SCANS:
        checks = [
            ("F@1% >= 0.97", cmp(metric(row, "f1"), 0.97, ge)),
            ("NC >= Poisson", cmp(metric(row, "nc"), metric(ref, "nc"), ge)),
        ]
    else:
        checks = [("F@1% >= 0.95", cmp(metric(row, "f1"), 0.95, ge))]
    return checks + [(f"time <= {TIME_GOAL_S:.0f} s", row["time_s"] <= TIME_GOAL_S)]


def summarize(rows: list[dict]) -> dict:
    """Print PASS/MISS per (shape, input, method != poisson) by input kind; return them for the JSON."""
    poisson = {(r["shape"], r["input"]): r for r in rows if r["method"] == "poisson"}
    summary: dict[str, list] = {}
    for kind in KINDS:
        kind_rows = [r for r in rows if r["input"] == kind and r["method"] != "poisson"]
        if not kind_rows:
            continue
        print(f"\n{kind}:")
        for r in kind_rows:
            ref = poisson.get((r["shape"], kind))
            checks = goal_checks(kind, r, ref)
            words = [
                f"{'n/a' if ok is None else 'PASS' if ok else 'MISS'} {name}" for name, ok in checks
            ]
            ratio = (
                ""
                if metric(ref, "cd_l1") in (None, 0) or metric(r, "cd_l1") is None
                else f"  (CD-L1 {metric(r, 'cd_l1') / metric(ref, 'cd_l1'):.2f}x Poisson)"
            )
            print(f"  {r['shape']:>14} {r['method']:>8}: " + ", ".join(words) + ratio)
            summary.setdefault(kind, []).append(
                {
                    "shape": r["shape"],
                    "method": r["method"],
                    "checks": {name: ok for name, ok in checks},
                }
            )
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    load, git = os.getloadavg(), git_state()
    rows = [row for shape in args.shapes for row in bench_shape(shape, args)]
    env = environment(device)
    load_after = os.getloadavg()
    print(
        f"\nreconstruction from clouds without normals, resolution {args.resolution}, on "
        f"{env['device']['name']} ({torch.get_num_threads()} torch threads); distances in GT bbox diagonals"
    )
    print(
        f"fields3d at {git['commit'][:10]}{' + uncommitted: ' + '; '.join(git['changed']) if git['changed'] else ''}"
    )
    print(
        f"load average (1/5/15 min): before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
    )
    print_table(
        [
            "shape",
            "input",
            "method",
            "CD-L1",
            "CD-L2",
            "NC",
            "F@1%",
            "F@0.5%",
            "time s",
            "faces",
            "watertight",
        ],
        table_rows(rows),
    )
    summary = summarize(rows)
    payload = {
        "benchmark": "recon",
        **env,
        "load_average": {"before": load, "after": load_after},
        "git": git,
        "config": {
            "shapes": args.shapes,
            "inputs": {
                k: (
                    {"virtual_scan": dataclasses.asdict(SCANS[k])}
                    if k in SCANS
                    else {"points": INPUTS[k][0], "noise_of_diagonal": INPUTS[k][1]}
                )
                for k in args.inputs
            },
            "methods": args.methods,
            "device": device.type,
            "resolution": args.resolution,
            "torch_threads": torch.get_num_threads(),
            "cloud_seed": args.seed,
            "recon_seed": 0,
            "metrics": {"n_points": 100_000, "seed": 0},
            "normals": "dropped",
            "time_goal_s": TIME_GOAL_S,
        },
        "rows": rows,
        "goals": summary,
    }
    out = write_json(args.out or RESULTS_DIR / f"recon-{device.type}.json", payload)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
