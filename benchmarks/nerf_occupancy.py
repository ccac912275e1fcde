"""Learned occupancy (LeC2O-NeRF, ``occupancy="learned"``) against the occupancy grid, in one run:
on the shipped scene and on a large sparse one (several shipped meshes spread over a box 20 times
an object's size, made by ``scripts/make-nerf-scene.py --spread 20`` into the results folder).

Both methods train the same field for the same number of steps (fair on a loaded machine) with the
pipeline's defaults for the device; reported per run: samples per ray the marcher hands the field
(on the test views' rays, before transmittance pruning; rays that miss everything count), training
step time (wall, with the machine's load), test PSNR over all test views, and the occupancy's
memory (the grid's buffers, or the network's parameters and Adam's two moments for them).

Usage::

    python benchmarks/nerf_occupancy.py [--steps 400] [--downscale 2] [--scenes spot,sparse]
                                        [--arms grid,grid-128,learned] [--device cpu]
                                        [--out PATH.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, environment, print_table, write_json

from fields3d.pipelines._common import resolve_device
from fields3d.pipelines.nerf import NerfConfig
from fields3d.pipelines.nerf.learned import marching_spec
from fields3d.pipelines.nerf.outputs import evaluate
from fields3d.pipelines.nerf.train import build_state, train_step
from fields3d.render.cameras import image_rays
from fields3d.render.datasets import load_scene
from fields3d.render.march import march_rays

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "assets" / "scenes" / "spot"
SPARSE = RESULTS_DIR / "scenes" / "sparse"
MESHES = ("spot", "cow", "stanford-bunny", "fandisk", "rocker-arm")
SPREAD = 20


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--steps", type=int, default=400, help="training steps per run")
    p.add_argument("--downscale", type=int, default=2)
    p.add_argument("--scenes", default="spot,sparse")
    p.add_argument(
        "--arms",
        default="grid,grid-128,learned",
        help="grid (the pipeline's resolution for the device), grid-N (N cells a side), learned",
    )
    p.add_argument(
        "--out", help="JSON path (default benchmarks/results/nerf-occupancy-<device>.json)"
    )
    return p.parse_args(argv)


def sparse_scene() -> Path:
    """The large sparse scene, made once (a minute or two) into the results folder."""
    if not (SPARSE / "transforms_test.json").is_file():
        meshes = [str(ROOT / "assets" / "meshes" / f"{m}.obj") for m in MESHES]
        script = ROOT / "scripts" / "make-nerf-scene.py"
        cmd = [sys.executable, str(script), "--mesh", *meshes, "--spread", str(SPREAD)]
        subprocess.run([*cmd, "--out", str(SPARSE)], check=True)
    return SPARSE


def load(data: Path, split: str, downscale: int, device: torch.device):
    s = load_scene(data, split, downscale)
    return dataclasses.replace(
        s,
        images=s.images.to(device),
        cameras=s.cameras.to(device),
        background=s.background.to(device),
    )


@torch.no_grad()
def samples_per_ray(state, test) -> float:
    """Mean samples the marcher gives a test ray (every test view's every pixel)."""
    total = rays = 0
    for i in range(len(test)):
        origins, dirs = image_rays(test.cameras, i)
        for o, d in zip(origins.split(1 << 13), dirs.split(1 << 13)):
            s = march_rays(o, d, marching_spec(state), step=state.settings.step)
            total, rays = total + s.n_samples, rays + o.shape[0]
    return total / rays


def occupancy_bytes(state) -> int:
    if state.occupancy is None:
        return sum(b.numel() * b.element_size() for b in state.grid.buffers())
    return 3 * sum(p.numel() * p.element_size() for p in state.occupancy.parameters())


def run(scene: str, data: Path, arm: str, args, device: torch.device, train, test) -> dict:
    occupancy, _, cells = arm.partition("-")
    extra = {"grid_resolution": int(cells)} if cells else {}
    config = NerfConfig(
        data=str(data),
        steps=args.steps,
        time_budget=None,
        downscale=args.downscale,
        occupancy=occupancy,
        turntable_frames=0,
        **extra,
    ).resolved(device.type)
    state = build_state(config, train, device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    load_before = os.getloadavg()[0]
    wall = time.perf_counter()
    while state.step < args.steps:
        train_step(config, state, train, generator)
    seconds = time.perf_counter() - wall
    scores = evaluate(state, test, None, config.eval_chunk)
    row = {
        "scene": scene,
        "arm": arm,
        "occupancy": occupancy,
        "psnr": scores["psnr"],
        "ssim": scores["ssim"],
        "steps": state.step,
        "step_ms": 1000 * seconds / state.step,
        "samples_per_ray": samples_per_ray(state, test),
        "occupancy_bytes": occupancy_bytes(state),
        "rays_per_step": state.n_rays,
        "load": [load_before, os.getloadavg()[0]],
        "config": config.to_dict(),
    }
    print(
        f"  {scene} {arm}: psnr {row['psnr']:.2f} dB  {row['step_ms']:.0f} ms/step  "
        f"{row['samples_per_ray']:.1f} samples/ray  load {row['load'][0]:.1f}",
        flush=True,
    )
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    scenes = {"spot": SPOT, "sparse": None}
    rows = []
    for name in (s.strip() for s in args.scenes.split(",") if s.strip()):
        data = scenes[name] if scenes.get(name) is not None else sparse_scene()
        train, test = (
            load(data, "train", args.downscale, device),
            load(data, "test", args.downscale, device),
        )
        print(
            f"{name}: {len(train)} train / {len(test)} test views at {train.cameras.width}x"
            f"{train.cameras.height}, box {train.aabb.tolist()}, {args.steps} steps per run"
        )
        for arm in (a.strip() for a in args.arms.split(",") if a.strip()):
            rows.append(run(name, data, arm, args, device, train, test))
    print_table(
        [
            "scene",
            "occupancy",
            "test PSNR",
            "SSIM",
            "ms/step",
            "samples/ray",
            "occ. MB",
            "rays/step",
            "load",
        ],
        [
            [
                r["scene"],
                r["arm"],
                f"{r['psnr']:.2f}",
                f"{r['ssim']:.3f}",
                f"{r['step_ms']:.0f}",
                f"{r['samples_per_ray']:.1f}",
                f"{r['occupancy_bytes'] / 1e6:.2f}",
                r["rays_per_step"],
                f"{r['load'][0]:.1f}",
            ]
            for r in rows
        ],
    )
    payload = {
        "benchmark": "nerf_occupancy",
        "environment": environment(device),
        "steps": args.steps,
        "downscale": args.downscale,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
    }
    out = write_json(args.out or RESULTS_DIR / f"nerf-occupancy-{device.type}.json", payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
