"""``fields3d generate``: a 3D object from a text prompt or a target (score distillation)."""

from __future__ import annotations

import argparse

from ._common import DEVICES, HELP, add_serve_options, with_viewer

GENERATE_EXAMPLE = """examples:
  fields3d generate "a ceramic mug" -o out/mug --model /models/stable-diffusion-2-1-base
  fields3d generate --guidance target:assets/meshes/spot.obj -o out/spot --time-budget 600
  fields3d generate scenes/generate-target-spot.toml      # a job file
  fields3d generate scenes/generate-mug.toml --resume      # continue from OUT/checkpoint.safetensors
  fields3d generate scenes/generate-target-spot.toml --view  # watch it train in the browser

The prior is Stable Diffusion (a local SD 1.x/2.x folder in the diffusers layout from --model or
FIELDS3D_SD_MODEL; nothing is downloaded) or, with --guidance target:MESH_OR_CHECKPOINT, the
exact denoiser of a known object's renders (no model needed). Writes checkpoint.safetensors
(`fields3d render` opens it), turntable.gif, mesh.ply, mesh.glb, metrics.json and config.json to OUT.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "generate",
        help=HELP["generate"],
        epilog=GENERATE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Optimise a hash-grid density and albedo field so that its renders from random "
        "cameras satisfy a 2D prior (score distillation), then write its mesh and a turntable.",
    )
    p.add_argument(
        "prompt", nargs="?", help="what to generate, or a TOML job file with a [generate] table"
    )
    p.add_argument("-o", "--out", help="output folder (default: the job file's, else out/generate)")
    p.add_argument("--model", help="Stable Diffusion folder (default: $FIELDS3D_SD_MODEL)")
    p.add_argument(
        "--guidance",
        help="the prior: stable_diffusion (default) or target:MESH_OR_CHECKPOINT",
    )
    p.add_argument(
        "--steps", type=int, help="optimisation steps (default: the job file's, else 1000)"
    )
    p.add_argument(
        "--time-budget", type=float, help="seconds of optimisation (stops at whichever comes first)"
    )
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument("--resolution", type=int, help="render size in pixels (default: 64)")
    p.add_argument("--device", choices=DEVICES, help="default: the job file's, else auto")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument(
        "--latent-field",
        action="store_true",
        help="fast coarse mode: the field renders Stable Diffusion latents directly",
    )
    p.add_argument(
        "--view", action="store_true", help="serve the live viewer while training (--host, --port)"
    )
    add_serve_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..pipelines.generate import GenerateConfig, generate, load_job

    overrides = {
        k: v
        for k, v in (
            ("output", args.out),
            ("model", args.model),
            ("guidance", args.guidance),
            ("steps", args.steps),
            ("time_budget", args.time_budget),
            ("seed", args.seed),
            ("resolution", args.resolution),
            ("device", args.device),
        )
        if v is not None
    }
    if args.resume:
        overrides["resume"] = True
    if args.latent_field:
        overrides["latent_field"] = True
    if args.prompt is not None and args.prompt.endswith(".toml"):
        config = load_job(args.prompt, overrides)
    else:
        if args.prompt is not None:
            overrides["prompt"] = args.prompt
        config = GenerateConfig(**overrides)
    if args.view:
        args.out = config.output  # the live viewer saves its screenshots there
        result = with_viewer(args, "nerf", lambda hook: generate(config, not args.quiet, hook=hook))
    else:
        result = generate(config, progress=not args.quiet)
    m = result.metrics
    loss = "none" if result.loss is None else f"{result.loss:.4g}"
    print(f"generated   {result.steps} steps in {result.train_seconds:.1f} s (last loss {loss})")
    if m["mesh"] is not None:
        mesh = m["mesh"]
        print(
            f"mesh        {mesh['note']}"
            if "note" in mesh
            else f"mesh        {mesh['vertices']} vertices, {mesh['faces']} faces"
        )
    if m["target"] is not None:
        t = m["target"]
        chamfer = f", Chamfer-L1 {t['chamfer_l1']:.4f}" if "chamfer_l1" in t else ""
        print(f"target      silhouette IoU {t['silhouette']['iou']:.3f}{chamfer}")
    for name, path in result.paths.items():
        print(f"{name:<12}{path}")
    return 0
