"""NeRF on the shipped scene: time to 25 / 30 dB test PSNR and PSNR after a fixed time, for each
colour network (plain MLP, Coordinate-Aware Modulation, mi-MLP) in the same run.

Training runs with the pipeline's own defaults for the device (``NerfConfig.resolved``). Every
``--eval-every`` seconds of training, ``--eval-views`` test views are rendered (that time is not
counted) and their mean PSNR recorded; the time to a PSNR is the training time at the first
evaluation reaching it (so it is late by up to ``--eval-every``). At the end all test views are
evaluated (PSNR and SSIM on the white background, as NeRF-synthetic numbers are reported).

Targets (issue): 25 dB within 10 minutes on 2 CPU cores (~200 px scenes); 30 dB within 30 s on an H100.

Usage::

    python benchmarks/nerf.py [--device auto|cpu|cuda] [--time-budget S] [--color-nets plain,cam,mi]
                              [--downscale 1] [--eval-every S] [--eval-views 5] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, environment, print_table, write_json

from fields3d.pipelines._common import resolve_device
from fields3d.pipelines.nerf import NerfConfig
from fields3d.pipelines.nerf.outputs import evaluate
from fields3d.pipelines.nerf.train import build_state, should_stop, timed, train_step
from fields3d.render.datasets import load_scene

SCENE = Path(__file__).resolve().parent.parent / "assets" / "scenes" / "spot"
GOALS = (25.0, 30.0)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--time-budget",
        type=float,
        help="training seconds per run (default 600 on cpu, 60 on cuda)",
    )
    p.add_argument("--color-nets", default="plain,cam,mi")
    p.add_argument("--downscale", type=int, default=1)
    p.add_argument(
        "--eval-every",
        type=float,
        help="training seconds between evaluations (default budget / 10)",
    )
    p.add_argument("--eval-views", type=int, default=5)
    p.add_argument("--threads", type=int, help="torch.set_num_threads first")
    p.add_argument("--data", default=str(SCENE))
    p.add_argument("--out", help="JSON path (default benchmarks/results/nerf-<device>.json)")
    return p.parse_args(argv)


def load(data: str, split: str, downscale: int, device: torch.device):
    s = load_scene(data, split, downscale)
    return dataclasses.replace(
        s,
        images=s.images.to(device),
        cameras=s.cameras.to(device),
        background=s.background.to(device),
    )


def run(color_net: str, args, device: torch.device, train, test) -> dict:
    config = NerfConfig(
        data=args.data,
        time_budget=args.time_budget,
        downscale=args.downscale,
        color_net=color_net,
        turntable_frames=0,
    ).resolved(device.type)
    state = build_state(config, train, device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    curve, next_eval = [], args.eval_every
    while not should_stop(config, state):
        start = timed(device)
        train_step(config, state, train, generator)
        state.seconds += timed(device) - start
        if state.seconds >= next_eval:
            score = evaluate(state, test, None, config.eval_chunk, limit=args.eval_views)["psnr"]
            curve.append((round(state.seconds, 2), state.step, round(score, 3)))
            print(
                f"  {color_net}: {state.seconds:6.1f} s  step {state.step:5d}  test psnr {score:.2f} dB",
                flush=True,
            )
            next_eval += args.eval_every
    final = evaluate(state, test, None, config.eval_chunk)
    reach = {
        f"seconds_to_{int(g)}db": next((t for t, _, p in curve if p >= g), None) for g in GOALS
    }
    return {
        "color_net": color_net,
        "psnr": final["psnr"],
        "ssim": final["ssim"],
        "steps": state.step,
        "train_seconds": state.seconds,
        "curve": curve,
        **reach,
        "n_params": sum(p.numel() for p in state.field.parameters()),
        "config": config.to_dict(),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    args.time_budget = args.time_budget or (60.0 if device.type == "cuda" else 600.0)
    args.eval_every = args.eval_every or args.time_budget / 10
    train, test = (
        load(args.data, "train", args.downscale, device),
        load(args.data, "test", args.downscale, device),
    )
    print(
        f"nerf on {train.name}: {len(train)} train / {len(test)} test views at "
        f"{train.cameras.width}x{train.cameras.height}, {args.time_budget:.0f} s per run on {device.type}"
    )
    load_before = list(torch.tensor(__import__("os").getloadavg()).tolist())
    rows = [
        run(net.strip(), args, device, train, test)
        for net in args.color_nets.split(",")
        if net.strip()
    ]
    print_table(
        [
            "colour net",
            "test PSNR",
            "SSIM",
            "steps",
            "train s",
            "s to 25 dB",
            "s to 30 dB",
            "params",
        ],
        [
            [
                r["color_net"],
                f"{r['psnr']:.2f}",
                f"{r['ssim']:.3f}",
                r["steps"],
                f"{r['train_seconds']:.0f}",
                r["seconds_to_25db"],
                r["seconds_to_30db"],
                r["n_params"],
            ]
            for r in rows
        ],
    )
    payload = {
        "benchmark": "nerf",
        "environment": environment(device),
        "scene": train.name,
        "image_size": [train.cameras.height, train.cameras.width],
        "time_budget": args.time_budget,
        "eval_every": args.eval_every,
        "eval_views": args.eval_views,
        "torch_threads": torch.get_num_threads(),
        "load_average": {"before": load_before, "after": list(__import__("os").getloadavg())},
        "goals_db": GOALS,
        "rows": rows,
    }
    out = write_json(args.out or RESULTS_DIR / f"nerf-{device.type}.json", payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
