"""NeRF on the shipped scene: time to 25 / 30 dB test PSNR and PSNR after a fixed time or number
of steps, for each field option of issue 25 side by side in the same run (:data:`OPTIONS`: the
plain field, CAM, the earlier hash-feature modulation, mi-MLP with and without the few-shot
regularisers), on all training views or few of them (``--train-views 8,16``), on one scene or
several (``--data a,b``).

Equal steps (``--steps``) are the fair comparison on a loaded machine; the table gives the
training seconds and the load average beside them.

Training runs with the pipeline's own defaults for the device (``NerfConfig.resolved``). Every
``--eval-every`` seconds of training, ``--eval-views`` test views are rendered (that time is not
counted) and their mean PSNR recorded; the time to a PSNR is the training time at the first
evaluation reaching it (so it is late by up to ``--eval-every``). At the end all test views are
evaluated (PSNR and SSIM on the white background, as NeRF-synthetic numbers are reported).

Targets (issue): 25 dB within 10 minutes on 2 CPU cores (~200 px scenes); 30 dB within 30 s on an H100.

Usage::

    python benchmarks/nerf.py [--device auto|cpu|cuda] [--time-budget S | --steps N]
                              [--options plain,cam,cam-hash,mi,mi-reg] [--train-views 8,16]
                              [--samples-per-step N] [--data SCENE[,SCENE]] [--downscale 1]
                              [--eval-every S] [--eval-views 5] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, environment, parse_ints, print_table, write_json

from fields3d.pipelines._common import resolve_device
from fields3d.pipelines.nerf import NerfConfig
from fields3d.pipelines.nerf.fewshot import select_views
from fields3d.pipelines.nerf.outputs import evaluate
from fields3d.pipelines.nerf.train import build_state, should_stop, timed, train_step
from fields3d.render.datasets import load_scene

SCENE = Path(__file__).resolve().parent.parent / "assets" / "scenes" / "spot"
GOALS = (25.0, 30.0)
#: The options compared, as NerfConfig settings. "mi" gives the density MLP a second hidden layer
#: (with one, mi changes nothing there); "plain-2" is the same depth without mi, its peer.
#: "mi-reg" adds the few-shot regularisers (anneal_steps: a tenth of the run, set in run()).
OPTIONS = {
    "plain": {},
    "plain-2": {"density_layers": 2},
    "cam": {"field_modulation": "cam"},
    "cam-hash": {"field_modulation": "cam-hash"},
    "mi": {"mlp": "mi", "density_layers": 2},
    "mi-reg": {"mlp": "mi", "density_layers": 2, "background_weight": 0.1, "anneal_steps": -1},
    "plain-reg": {"background_weight": 0.1, "anneal_steps": -1},
    "occupancy-learned": {"occupancy": "learned"},  # empty-space skipping by a learned network
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--time-budget",
        type=float,
        help="training seconds per run (default 600 on cpu, 60 on cuda)",
    )
    p.add_argument("--steps", type=int, help="training steps per run (instead of a time budget)")
    p.add_argument("--options", default="plain,cam,cam-hash,mi", help=f"from {', '.join(OPTIONS)}")
    p.add_argument("--train-views", help="comma-separated view counts (few-shot; default all)")
    p.add_argument("--samples-per-step", type=int, help="default: the pipeline's for the device")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other NerfConfig setting for every run (a JSON value), e.g. grid_resolution=32",
    )
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


def run(option: str, args, device: torch.device, data: str, train, test) -> dict:
    settings = dict(OPTIONS[option])
    if settings.get("anneal_steps") == -1:
        settings["anneal_steps"] = max(1, (args.steps or 0) // 10)
    config = NerfConfig(
        data=data,
        time_budget=None if args.steps else args.time_budget,
        steps=args.steps,
        downscale=args.downscale,
        samples_per_step=args.samples_per_step,
        turntable_frames=0,
        **{**args.overrides, **settings},
    ).resolved(device.type)
    load = os.getloadavg()[0]
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
                f"  {option}: {state.seconds:6.1f} s  step {state.step:5d}  test psnr {score:.2f} dB",
                flush=True,
            )
            next_eval += args.eval_every
    final = evaluate(state, test, None, config.eval_chunk)
    print(
        f"  {option}: {len(train)} views, {state.step} steps in {state.seconds:.0f} s, test PSNR "
        f"{final['psnr']:.2f} dB",
        flush=True,
    )
    reach = {
        f"seconds_to_{int(g)}db": next((t for t, _, p in curve if p >= g), None) for g in GOALS
    }
    return {
        "option": option,
        "scene": train.name,
        "train_views": len(train),
        "load_before": round(load, 2),
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
    if args.steps:
        args.eval_every = math.inf  # equal steps: only the final evaluation
    args.overrides = {k: json.loads(v) for k, _, v in (s.partition("=") for s in args.set)}
    options = [o.strip() for o in args.options.split(",") if o.strip()]
    unknown = [o for o in options if o not in OPTIONS]
    if unknown:
        raise SystemExit(f"unknown options {unknown}; known: {', '.join(OPTIONS)}")
    views = [None] if not args.train_views else parse_ints(args.train_views)
    load_before = list(os.getloadavg())
    rows = []
    for data in args.data.split(","):
        everything = load(data, "train", args.downscale, device)
        test = load(data, "test", args.downscale, device)
        for n in views:
            train = select_views(everything, n, data)
            print(
                f"nerf on {train.name}: {len(train)} train / {len(test)} test views at "
                f"{train.cameras.width}x{train.cameras.height}, "
                f"{f'{args.steps} steps' if args.steps else f'{args.time_budget:.0f} s'} per run "
                f"on {device.type}",
                flush=True,
            )
            rows += [run(option, args, device, data, train, test) for option in options]
    print_table(
        ["scene", "views", "option", "test PSNR", "SSIM", "steps", "train s", "load", "s to 25 dB"],
        [
            [
                r["scene"],
                r["train_views"],
                r["option"],
                f"{r['psnr']:.2f}",
                f"{r['ssim']:.3f}",
                r["steps"],
                f"{r['train_seconds']:.0f}",
                r["load_before"],
                r["seconds_to_25db"],
            ]
            for r in rows
        ],
    )
    payload = {
        "benchmark": "nerf",
        "environment": environment(device),
        "data": args.data,
        "downscale": args.downscale,
        "steps": args.steps,
        "time_budget": None if args.steps else args.time_budget,
        "eval_every": args.eval_every if math.isfinite(args.eval_every) else None,
        "eval_views": args.eval_views,
        "torch_threads": torch.get_num_threads(),
        "load_average": {"before": load_before, "after": list(os.getloadavg())},
        "goals_db": GOALS,
        "options": {o: OPTIONS[o] for o in options},
        "overrides": args.overrides,
        "rows": rows,
    }
    out = write_json(args.out or RESULTS_DIR / f"nerf-{device.type}.json", payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
