"""Shapes per minute of ``fields3d recon-batch``: 1 vs 2 workers, the local pool vs Ray.

Eight inputs (the five shipped meshes, the shipped bunny scan, and copies of cow and spot under
other names) are reconstructed by :func:`fields3d.pipelines.batch.run_batch` with the same small
recon settings in each configuration: the local pool with 1 and 2 workers, and a local Ray (started
by the batch, as ``--ray`` does) with 1 and 2 CPUs; every shape gets one thread (torch and our
core) in all four, so 1 worker uses one core and 2 workers two. Each configuration writes a
fresh OUTDIR, so nothing is skipped. Reported per configuration: the wall time of the whole batch
(worker start-up, or Ray's start and stop, included), shapes per minute, the median seconds a
shape took inside its worker, and for Ray the overhead per shape against the local pool with the
same parallelism, ``(wall_ray - wall_local) / shapes``. The load average before and after is
recorded: the figures of a shared machine move with it. ``ray-fixed`` times what Ray adds beside
the shapes (start, first workers, scheduling a task, stop) with empty tasks.

Usage::

    python benchmarks/batch.py [--resolution 64] [--steps 20] [--samples 5000]
                               [--configs local-1,local-2,ray-1,ray-2,ray-fixed] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import RESULTS_DIR, environment, print_table, write_json

from fields3d.pipelines.batch import BatchConfig, run_batch

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CONFIGS = ("local-1", "local-2", "ray-1", "ray-2")  # and "ray-fixed": Ray's start, stop, scheduling


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--configs", default=",".join((*CONFIGS, "ray-fixed")))
    p.add_argument("--out", type=Path)
    return p.parse_args(argv)


def inputs(folder: Path) -> list[Path]:
    """The eight shapes, copied into ``folder`` (so that their names are distinct)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((ASSETS / "meshes").glob("*.obj")) + [ASSETS / "scans" / "bunny.ply"]
    sources += [ASSETS / "meshes" / "cow.obj", ASSETS / "meshes" / "spot.obj"]
    out = []
    for i, src in enumerate(sources):
        dst = folder / (src.name if i < 6 else f"{src.stem}-copy{src.suffix}")
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def run(name: str, shapes: list[Path], outdir: Path, recon: dict) -> dict:
    kind, n = name.split("-")
    config = BatchConfig(
        inputs=[str(s) for s in shapes],
        outdir=outdir,
        recon=recon,
        workers=int(n),
        threads=1,  # one core per shape everywhere: 2 workers use 2 cores, 1 worker 1 core
        force=True,
        ray=kind == "ray",
    )
    load = os.getloadavg()[0]
    start = time.perf_counter()
    result = run_batch(config, progress=False)
    wall = time.perf_counter() - start
    seconds = [r["seconds"] for r in result.records]
    return {
        "config": name,
        "workers": int(n),
        "executor": kind,
        "shapes": len(result.records),
        "failed": len(result.failed),
        "wall_s": wall,
        "shapes_per_min": 60 * len(result.records) / wall,
        "shape_median_s": statistics.median(seconds),
        "shape_sum_s": sum(seconds),
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def ray_fixed_costs(tasks: int = 100) -> dict:
    """Seconds to start a local Ray with 2 CPUs, run its first two (empty) tasks (worker start),
    then ``tasks`` more, and stop it: what ``--ray`` adds to a batch beyond the shapes' work."""
    import logging

    import ray

    t0 = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=False,
    )
    t1 = time.perf_counter()
    echo = ray.remote(num_cpus=1)(lambda x: x)
    ray.get([echo.remote(i) for i in range(2)])
    t2 = time.perf_counter()
    ray.get([echo.remote(i) for i in range(tasks)])
    t3 = time.perf_counter()
    ray.shutdown()
    t4 = time.perf_counter()
    return {
        "init_s": t1 - t0,
        "first_tasks_s": t2 - t1,
        "per_task_ms": 1e3 * (t3 - t2) / tasks,
        "shutdown_s": t4 - t3,
        "load": os.getloadavg()[0],
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(names) - set(CONFIGS) - {"ray-fixed"}
    if unknown:
        print(f"error: unknown configs {sorted(unknown)}; choose from {CONFIGS}", file=sys.stderr)
        return 2
    recon = {
        "resolution": args.resolution,
        "steps": args.steps,
        "n_samples": args.samples,
        "device": "cpu",
    }
    rows = []
    fixed = ray_fixed_costs() if "ray-fixed" in names else None
    if fixed is not None:
        print("ray fixed costs: " + ", ".join(f"{k} {v:.3g}" for k, v in fixed.items()))
    names = [n for n in names if n != "ray-fixed"]
    with tempfile.TemporaryDirectory() as tmp:
        shapes = inputs(Path(tmp) / "in")
        for name in names:
            rows.append(run(name, shapes, Path(tmp) / name, recon))
            print(f"{name}: {rows[-1]['wall_s']:.1f} s", file=sys.stderr)
    local = {r["workers"]: r["wall_s"] for r in rows if r["executor"] == "local"}
    for r in rows:
        if r["executor"] == "ray" and r["workers"] in local:
            r["ray_overhead_per_shape_s"] = (r["wall_s"] - local[r["workers"]]) / r["shapes"]
    print_table(
        [
            "config",
            "shapes",
            "failed",
            "wall s",
            "shapes/min",
            "median s/shape",
            "ray s/shape",
            "load",
        ],
        [
            [
                r["config"],
                r["shapes"],
                r["failed"],
                r["wall_s"],
                r["shapes_per_min"],
                r["shape_median_s"],
                r.get("ray_overhead_per_shape_s"),
                f"{r['load_before']:.1f}-{r['load_after']:.1f}",
            ]
            for r in rows
        ],
    )
    payload = {
        **environment(torch.device("cpu")),
        "settings": {**recon, "shapes": [s.name for s in shapes]},
        "results": rows,
        "ray_fixed_costs": fixed,
    }
    out = write_json(args.out or RESULTS_DIR / "batch-cpu.json", payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
