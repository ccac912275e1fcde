"""The viewer's field rendering: frames per second from a client's camera, fields3d's render path
(``fields3d.viewer.frames.render_frame``) against the pure-torch reference, same run.

Models: the shipped spot scene's NeRF (``--nerf CHECKPOINT``, or trained here for
``--train-seconds`` with the CPU defaults into ``benchmarks/results/viewer-nerf``) rendered through
its occupancy grid (marching and compositing in the core), and a recon SDF field (a ball of
radius 1 on a 49^3 band grid, as ``fields3d recon`` saves it) sphere-traced. The camera is the
viewer's opening view of each (50 degrees, at 1.1 box diagonals... for the NeRF the first training
camera's pose), square pictures of 256^2, 512^2 and 1024^2 (``--sides``).

* ``at rest``: ``render_frame(model, cameras, Look())`` (colour mode), what the viewer sends
  once the camera rests.
* ``moving`` (NeRF only): ``render_frame(..., preview=True)``, what it sends while the camera
  moves: the field baked into a dense grid (``fields3d.viewer.preview``; the bake's time is
  reported once, as ``bake_s``), with its PSNR against the at-rest frame.
* ``reference`` (NeRF only): the same rays through ``fields3d.render.reference``:
  ``march_reference`` (the marcher's loop in float64 torch) over the same occupancy grid,
  the field at the midpoints, ``composite_reference`` (cumulative sums), same background.
  Run once per size up to ``--ref-max-side`` (it is slow).
* ``first frame``: a cold start, as ``fields3d view`` has it: load the checkpoint, then the
  first 256^2 frame (seconds).
* ``training overhead`` (``--overhead-seconds S``, 0 skips it): NeRF training on the spot scene
  (CPU defaults, pictures downscaled by 2) for S seconds without the viewer, then with the
  viewer serving it and one client connected whose camera rests (live frames re-rendered from
  snapshots as the viewer does); steps per wall-clock second over the training loop, from the
  hook's timestamps (the same hook records the run without the viewer).

Usage::

    python benchmarks/viewer.py [--nerf CHECKPOINT] [--train-seconds 120] [--sides 256,512,1024]
                                [--repeats 5] [--warmup 1] [--ref-max-side 256] [--threads N]
                                [--device cpu|cuda] [--out PATH.json]

On CUDA (``--device cuda``) the reference runs only on the CPU, so it is skipped.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, environment, measure, print_table, write_json

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nerf", help="a NeRF checkpoint (default: train one on assets/scenes/spot)")
    p.add_argument("--train-seconds", type=float, default=120.0)
    p.add_argument("--sides", default="256,512,1024")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--ref-max-side", type=int, default=256)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="where the models render"
    )
    p.add_argument("--overhead-seconds", type=float, default=60.0)
    p.add_argument("--out", default=str(RESULTS_DIR / "viewer.json"))
    return p.parse_args(argv)


def nerf_checkpoint(args) -> Path:
    from fields3d.pipelines.nerf import NerfConfig, train_nerf

    if args.nerf:
        return Path(args.nerf)
    out = RESULTS_DIR / "viewer-nerf"
    if not (out / "checkpoint.safetensors").is_file():
        print(f"training the spot NeRF for {args.train_seconds:g} s on the CPU -> {out}")
        config = NerfConfig(
            data=str(ROOT / "assets/scenes/spot"),
            output=str(out),
            device="cpu",
            time_budget=args.train_seconds,
            turntable_frames=0,
        )
        result = train_nerf(config, progress=False)
        print(f"  {result.steps} steps, test PSNR {result.psnr:.2f} dB")
    return out / "checkpoint.safetensors"


def ball_field(folder: Path) -> Path:
    from fields3d.fields import BandSDFGrid
    from fields3d.geometry import Normalization
    from fields3d.pipelines.recon import ReconConfig
    from fields3d.pipelines.recon.checkpoint import save_field

    axis = torch.linspace(-1, 1, 49)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    ball = (x**2 + y**2 + z**2).sqrt() - 0.5
    path = folder / "ball.field.safetensors"
    save_field(
        path,
        BandSDFGrid.from_coarse(ball, ball.abs() < 0.2),
        Normalization((0, 0, 0), 2.0),
        ReconConfig("ball.xyz"),
    )
    return path


def view_of(model, kind: str):
    """The View the viewer opens with (a NeRF: its first training camera's pose)."""
    from fields3d.render.cameras import look_at
    from fields3d.viewer.camera import View

    if kind == "nerf" and model.cameras is not None:
        c2w = model.cameras.c2w[0].detach().double().cpu().numpy()
        fov = 2 * math.atan(model.cameras.height / 2 / float(model.cameras.fy[0]))
        return View(c2w, fov, 1.0)
    c2w = look_at((0.0, 2.5, 6.5), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)).numpy()
    return View(c2w, math.radians(50), 1.0)


@torch.no_grad()
def reference_frame(model, cameras):
    """The NeRF's picture through fields3d.render.reference (march, field, composite)."""
    from fields3d.render.cameras import image_rays
    from fields3d.render.reference import composite_reference, march_reference

    origins, dirs = image_rays(cameras, 0)
    origins, dirs = origins.float(), dirs.float()
    t0, t1, ids = march_reference(
        origins, dirs, model.grid.spec(), step=model.settings.step, near=model.settings.near
    )
    counts = torch.bincount(ids, minlength=origins.shape[0])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    t0, t1 = t0.float(), t1.float()
    x = origins[ids] + dirs[ids] * ((t0 + t1) / 2)[:, None]
    sigmas, rgb = model.field(x, dirs[ids])
    color, opacity, _ = composite_reference(
        sigmas.float(), rgb.float(), t0, t1, offsets, t_min=model.settings.t_min
    )
    return color + model.background.cpu() * (1 - opacity[:, None])


def preview_figures(model, cams, args) -> dict:
    """The frame the viewer sends while the camera moves (the baked preview): its time, the bake's
    time (the first preview of a model, once), and its PSNR against the field's own frame."""
    from fields3d.viewer.frames import Look, render_frame
    from fields3d.viewer.preview import nerf_preview

    start = time.perf_counter()
    nerf_preview(model)
    bake_s = time.perf_counter() - start
    device = model.device
    out = measure(
        lambda: render_frame(model, cams, Look(), preview=True), device, args.repeats, args.warmup
    )
    fast = render_frame(model, cams, Look(), preview=True)["image"].astype("float64")
    full = render_frame(model, cams, Look())["image"].astype("float64")
    mse = float(((fast - full) ** 2).mean())
    out["psnr_vs_field"] = 10 * math.log10(255**2 / max(mse, 1e-12))
    out["bake_s"] = bake_s
    return out


def training_rate(seconds: float, with_viewer: bool) -> dict:
    """Steps per wall-clock second of NeRF training, with or without the viewer and a client."""
    import msgspec
    import viser
    from websockets.sync.client import connect

    from fields3d.pipelines.hooks import TrainingHook
    from fields3d.pipelines.nerf import NerfConfig, train_nerf
    from fields3d.viewer.app import Viewer
    from fields3d.viewer.live import LiveTraining
    from fields3d.viewer.sources import Source

    base = LiveTraining if with_viewer else TrainingHook

    class Timed(base):
        def __init__(self):
            super().__init__()
            self.times = []

        def step(self, step, metrics, snapshot):
            self.times.append((step, time.perf_counter()))
            super().step(step, metrics, snapshot)

    hook = Timed()
    out = Path(tempfile.mkdtemp())
    config = NerfConfig(
        data=str(ROOT / "assets/scenes/spot"),
        output=str(out),
        device="cpu",
        time_budget=seconds,
        downscale=2,
        turntable_frames=0,
    )
    viewer = ws = None
    if with_viewer:
        viewer = Viewer(Source("nerf", out / "live"), live=hook)
        ws = connect(f"ws://127.0.0.1:{viewer.port}", subprotocols=[f"viser-v{viser.__version__}"])
        ws.send(msgspec.msgpack.encode(_camera()))
    try:
        train_nerf(config, progress=False, hook=hook)
    finally:
        if ws is not None:
            ws.close()
        if viewer is not None:
            viewer.close()
    (s0, t0), (s1, t1) = hook.times[len(hook.times) // 10], hook.times[-1]  # past the warm-up
    out = {"steps": s1, "steps_per_s": (s1 - s0) / (t1 - t0)}
    if with_viewer:
        out["snapshots"] = hook.snapshots
    return out


def _camera() -> dict:
    """A client camera message: 4 units from the origin along -y, looking at it, +z up."""
    return {
        "type": "ViewerCameraMessage",
        "wxyz": [0.7071067811865476, -0.7071067811865476, 0.0, 0.0],
        "position": [0.0, -4.0, 0.0],
        "fov": 0.8,
        "near": 0.01,
        "far": 100.0,
        "image_height": 600,
        "image_width": 800,
        "look_at": [0.0, 0.0, 0.0],
        "up_direction": [0.0, 0.0, 1.0],
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from fields3d.pipelines.models import load_model
    from fields3d.viewer.frames import Look, render_frame

    device = torch.device(args.device)
    sides = [int(s) for s in args.sides.split(",")]
    tmp = Path(tempfile.mkdtemp())
    paths = {"nerf": nerf_checkpoint(args), "sdf": ball_field(tmp)}
    rows, results = [], []
    for kind, path in paths.items():
        start = time.perf_counter()
        model = load_model(path, device.type)
        view = view_of(model, kind)
        render_frame(model, view.cameras(256), Look())
        first = time.perf_counter() - start
        for side in sides:
            cams = view.cameras(side)
            ours = measure(
                lambda m=model, c=cams: render_frame(m, c, Look()),
                device,
                args.repeats,
                args.warmup,
            )
            ref = None
            if kind == "nerf" and side <= args.ref_max_side and device.type == "cpu":
                ref = measure(lambda m=model, c=cams: reference_frame(m, c), device, 1, 0)
                mine = torch.from_numpy(render_frame(model, cams, Look())["image"]).float() / 255
                theirs = reference_frame(model, cams).view(side, side, 3).clamp(0, 1)
                ref["max_abs_diff"] = float((mine - theirs).abs().max())
            fps = 1e3 / ours["median_ms"]
            ref_fps = 1e3 / ref["median_ms"] if ref else None
            fast = preview_figures(model, cams, args) if kind == "nerf" else None
            rows.append(
                [
                    kind,
                    f"{side}^2",
                    f"{ours['median_ms']:.0f}",
                    f"{fps:.1f}",
                    f"{fast['median_ms']:.0f}" if fast else "-",
                    f"{1e3 / fast['median_ms']:.1f}" if fast else "-",
                    f"{fast['psnr_vs_field']:.1f}" if fast else "-",
                    f"{ref['median_ms']:.0f}" if ref else "-",
                    f"{ref_fps:.2f}" if ref else "-",
                    f"{first:.2f}" if side == sides[0] else "",
                ]
            )
            results.append(
                {
                    "model": kind,
                    "side": side,
                    "ours": ours,
                    "fps": fps,
                    "preview": fast,
                    "reference": ref,
                    "first_frame_s": first,
                }
            )
    print_table(
        [
            "model",
            "picture",
            "at rest ms",
            "at rest FPS",
            "moving ms",
            "moving FPS",
            "moving PSNR",
            "ref ms",
            "ref FPS",
            "first frame s",
        ],
        rows,
    )
    overhead = None
    if args.overhead_seconds > 0:
        without = training_rate(args.overhead_seconds, False)
        with_ = training_rate(args.overhead_seconds, True)
        overhead = {"without_viewer": without, "with_viewer_idle_client": with_}
        print(
            f"training: {without['steps_per_s']:.1f} steps/s without the viewer, "
            f"{with_['steps_per_s']:.1f} with it and an idle client "
            f"({100 * (1 - with_['steps_per_s'] / without['steps_per_s']):+.1f}% slower, "
            f"{with_['snapshots']} snapshots)"
        )
    payload = {
        "benchmark": "viewer",
        "training_overhead": overhead,
        "config": vars(args),
        "environment": environment(device),
        "load_average": os.getloadavg(),
        "results": results,
    }
    print(f"wrote {write_json(args.out, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
