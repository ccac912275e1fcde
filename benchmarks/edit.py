"""Text-guided editing (``fields3d edit``): the time of one edit step and the peak memory, by the
voxel grid's resolution.

Scene (analytic, built in milliseconds at any resolution): the source is a voxel field of a ball
of radius 0.5 in ``[-1, 1]^3`` (density 400 inside, grey) saved as an edit checkpoint; the prior
is target guidance toward the renders of a 64^3 voxel field of that ball with a second ball of
radius 0.25 on top (the target's own resolution is fixed, so its rendering costs the same at
every grid resolution). Each resolution runs in a fresh Python process (``--one R``): the source
is distilled by vertex sampling only (no render fitting), then ``--warmup`` untimed and
``--repeats`` timed edit steps (:func:`fields3d.pipelines.edit.train.edit_step`: 64-pixel
renders of the whole box, SDS, the correlation regulariser over the ``R^3`` grid, Adam on both
tables), each split into render / guidance / backward as the pipeline times them.

Memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process, the peak resident set
(torch's allocations included, which tracemalloc does not see), after the imports (``baseline``)
and after the steps (``peak``); ``delta`` is their difference: what the grid, its Adam moments,
the frozen original and the steps' temporaries added. On CUDA the device's
``torch.cuda.max_memory_allocated`` is reported too.

Usage::

    python benchmarks/edit.py [--device auto|cpu|cuda] [--resolutions 64,128,256]
                              [--repeats 5] [--warmup 2] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, environment, print_table, usable_device, write_json

from fields3d.pipelines._common import torch_threads
from fields3d.pipelines.edit import EditConfig, VoxelField, save_voxels
from fields3d.pipelines.edit.distill import sample_source
from fields3d.pipelines.edit.pipeline import build_prior
from fields3d.pipelines.edit.source import open_source
from fields3d.pipelines.edit.train import edit_step, new_state

TARGET_RESOLUTION = 64
RENDER_SIZE = 64


def balls(path: Path, resolution: int, with_top: bool) -> Path:
    field = VoxelField([[-1, -1, -1], [1, 1, 1]], resolution)
    x = field.vertices()
    solid = x.norm(dim=-1) < 0.5
    if with_top:
        solid |= (x - torch.tensor([0.0, 0.6, 0.0])).norm(dim=-1) < 0.25
    field.set_grids(solid.float() * 400, torch.full((*x.shape[:3], 3), 0.7))
    return save_voxels(path, field, camera_distance=3.5, fov=40.0)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def one(resolution: int, device: torch.device, repeats: int, warmup: int) -> dict:
    """Time the steps at one resolution (run in its own process)."""
    baseline = max_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        source_path = balls(Path(tmp) / "source.safetensors", resolution, False)
        target = balls(Path(tmp) / "target.safetensors", TARGET_RESOLUTION, True)
        config = EditConfig(
            checkpoint=str(source_path),
            prompt="with a ball on top",
            guidance=f"target:{target}",
            guidance_options={"supersample": 1},
            output=tmp,
            device=device.type,
            steps=warmup + repeats,
            resolution=resolution,
            render_size=RENDER_SIZE,
        )
        source = open_source(source_path, device.type)
        prior = build_prior(config, device, source)
        original = sample_source(source, resolution, device)
        state = new_state(config, original, source, {}, device)
        times, parts = [], []
        with torch_threads(1 if device.type == "cpu" else None):
            for k in range(warmup + repeats):
                before = dict(state.timings)
                start = time.perf_counter()
                edit_step(config, state, source, prior, warmup + repeats)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if k >= warmup:
                    times.append(time.perf_counter() - start)
                    parts.append({p: state.timings[p] - before[p] for p in before})
    result = {
        "resolution": resolution,
        "step_ms": 1000 * statistics.median(times),
        "step_ms_min": 1000 * min(times),
        "step_ms_max": 1000 * max(times),
        "parts_ms": {p: 1000 * statistics.median(q[p] for q in parts) for p in parts[0]},
        "rss_baseline_mb": baseline,
        "rss_peak_mb": max_rss_mb(),
        "rss_delta_mb": max_rss_mb() - baseline,
        "grid_mb": 4 * resolution**3 * 4 / 2**20,  # one grid's tables: 4 float32 per vertex
    }
    if device.type == "cuda":
        result["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolutions", default="64,128,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out")
    args = parser.parse_args()
    device = usable_device(args.device)
    if device is None:
        return 2
    if args.one is not None:
        print(json.dumps(one(args.one, device, args.repeats, args.warmup)))
        return 0
    load_start = os.getloadavg()
    rows, results = [], []
    for r in [int(v) for v in args.resolutions.split(",")]:
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(r), "--device", device.type]
            + ["--repeats", str(args.repeats), "--warmup", str(args.warmup)],
            capture_output=True,
            text=True,
            check=True,
        )
        res = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(res)
        p = res["parts_ms"]
        rows.append(
            [r, res["step_ms"], p["render"], p["guidance"], p["backward"], res["rss_delta_mb"]]
        )
        print(f"{r}^3 done: {res['step_ms']:.0f} ms a step", flush=True)
    print_table(["R", "step ms", "render", "guidance", "backward", "peak RSS +MB"], rows)
    payload = {
        "benchmark": "edit",
        "environment": environment(device),
        "config": {
            "render_size": RENDER_SIZE,
            "target_resolution": TARGET_RESOLUTION,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "memory": "ru_maxrss of a fresh process per resolution (peak - after imports)",
        },
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "results": results,
    }
    out = args.out or RESULTS_DIR / f"edit-{device.type}.json"
    print(f"wrote {write_json(out, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
