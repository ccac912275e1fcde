"""``fields3d nerf`` and ``render``: train a radiance field; render a trained field in orbit."""

from __future__ import annotations

import argparse

from ._common import DEVICES, HELP, add_serve_options, with_viewer

NERF_EXAMPLE = """examples:
  fields3d nerf scenes/spot.toml                       # the shipped scene, settings from the job file
  fields3d nerf --data assets/scenes/spot -o out/spot --time-budget 120
  fields3d nerf --data my_capture -o out/capture --device cuda --steps 20000 --resume

DATA is a NeRF-synthetic folder (transforms_train.json / transforms_test.json) or an instant-NGP
folder (transforms.json). Writes metrics.json (psnr, ssim, train_seconds), test/r_<i>.png,
turntable.gif, config.json, mesh.ply (with --mesh) and checkpoint.safetensors (--resume continues
from it) to OUT.
"""


def add_nerf(sub) -> None:
    from ..fields.radiance import MLPS, MODULATIONS  # torch: only when the nerf verb runs

    p = sub.add_parser(
        "nerf",
        help=HELP["nerf"],
        epilog=NERF_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a hash-grid radiance field on posed RGBA pictures and evaluate it on the test views.",
    )
    p.add_argument("job", nargs="?", help="a TOML job file with a [nerf] table (see scenes/)")
    p.add_argument("--data", help="scene folder (overrides the job file)")
    p.add_argument("-o", "--out", help="output folder (default: the job file's, else out/nerf)")
    p.add_argument("--device", choices=DEVICES, help="default: the job file's, else auto")
    p.add_argument(
        "--time-budget", type=float, help="seconds of training (default: the job file's, else 600)"
    )
    p.add_argument(
        "--steps",
        type=int,
        help="training steps (stops at whichever of steps and time comes first)",
    )
    p.add_argument("--downscale", type=int, help="shrink the pictures by this integer factor")
    p.add_argument(
        "--mesh",
        type=int,
        metavar="RES",
        help="also write OUT/mesh.ply: the density's iso-surface "
        "on RES^3 points over the scene box",
    )
    p.add_argument(
        "--field-modulation",
        choices=MODULATIONS,
        help="scale and shift the MLPs' hidden units from a grid (CAM; default: the job file's, "
        "else none)",
    )
    p.add_argument(
        "--mlp", choices=MLPS, help="mi: the inputs into every hidden layer (mi-MLP; default plain)"
    )
    p.add_argument(
        "--train-views",
        type=int,
        metavar="N",
        help="train on N of the training views, evenly spaced (few-shot; default all)",
    )
    p.add_argument(
        "--occupancy",
        choices=("grid", "learned"),
        help="empty-space skipping: the occupancy grid (default) or a learned occupancy network",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--view", action="store_true", help="serve the live viewer while training (--host, --port)"
    )
    add_serve_options(p)
    p.set_defaults(run=run_nerf)


RENDER_EXAMPLE = """examples:
  fields3d render out/nerf/checkpoint.safetensors -o out/nerf/render --frames 60 --width 800
  fields3d render out/bunny/mesh.field.safetensors --frames 24     # a `fields3d recon` field

writes turntable.gif and orbit/frame_<k>.png to OUT. A NeRF is seen from cameras circling the
scene at its training views' mean distance and height, in pictures of their size unless --width
(the height follows the aspect); a reconstructed surface's field is sphere-traced from a ring
around it (+y up), in square pictures 400 pixels across unless --width. Frames an earlier run
left in OUT/orbit are replaced.
"""


def add_render(sub) -> None:
    p = sub.add_parser(
        "render",
        help=HELP["render"],
        epilog=RENDER_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Render the field of a checkpoint written by `fields3d nerf` or `fields3d recon` from "
        "cameras orbiting the scene.",
    )
    p.add_argument("checkpoint", help="a NeRF checkpoint.safetensors or a recon .field.safetensors")
    p.add_argument("-o", "--out", help="output folder (default: render/ beside the checkpoint)")
    p.add_argument(
        "--frames", type=int, default=36, help="cameras around the scene (default: %(default)s)"
    )
    p.add_argument(
        "--width",
        type=int,
        help="picture width in pixels (default: a NeRF's training pictures', else 400)",
    )
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: %(default)s")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_render)


def run_nerf(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..pipelines.nerf import NerfConfig, load_job, train_nerf

    overrides = {
        k: v
        for k, v in (
            ("data", args.data),
            ("output", args.out),
            ("device", args.device),
            ("time_budget", args.time_budget),
            ("steps", args.steps),
            ("downscale", args.downscale),
            ("mesh_resolution", args.mesh),
            ("occupancy", args.occupancy),
            ("field_modulation", args.field_modulation),
            ("mlp", args.mlp),
            ("train_views", args.train_views),
        )
        if v is not None
    }
    if args.resume:
        overrides["resume"] = True
    if args.job is not None:
        config = load_job(args.job, overrides)
    elif "data" in overrides:
        config = NerfConfig(**overrides)
    else:
        raise InputError("pass a job file (e.g. scenes/spot.toml) or --data SCENE_FOLDER")
    if args.view:
        result = with_viewer(args, "nerf", lambda hook: train_nerf(config, not args.quiet, hook))
    else:
        result = train_nerf(config, progress=not args.quiet)
    print(f"psnr        {result.psnr:.2f} dB   ssim {result.ssim:.3f}   (test views)")
    print(f"trained     {result.train_seconds:.1f} s, {result.steps} steps")
    if result.mesh is not None:
        mesh = result.mesh
        print(
            f"mesh        {mesh['note']}"
            if "note" in mesh
            else f"mesh        {mesh['vertices']} vertices, {mesh['faces']} faces (density level {mesh['level']:g})"
        )
    print(f"outputs     {result.out_dir}")
    return 0


def run_render(args: argparse.Namespace) -> int:
    from .._checks import check_int
    from ..pipelines.nerf.model import MAX_PICTURE_SIDE
    from ..pipelines.orbit import render_orbit
    from ..render.cameras import MAX_FRAMES

    check_int("--frames", args.frames, 1, MAX_FRAMES)  # before loading; the messages name the flags
    if args.width is not None:
        check_int("--width", args.width, 1, MAX_PICTURE_SIDE)
    result = render_orbit(
        args.checkpoint,
        args.out or None,  # -o '': the default, beside the checkpoint
        frames=args.frames,
        width=args.width,
        device=args.device,
        progress=not args.quiet,
    )
    print(
        f"rendered    {len(result.frames)} views of {result.width}x{result.height} ({result.subject})"
    )
    print(f"turntable   {result.gif}")
    print(f"frames      {result.frames_dir}")
    return 0
