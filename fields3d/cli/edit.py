"""``fields3d edit``: change a trained radiance field as a text prompt says (Vox-E)."""

from __future__ import annotations

import argparse

from ._common import DEVICES, HELP

EDIT_EXAMPLE = """examples:
  fields3d edit out/spot/checkpoint.safetensors "wearing a party hat" -o out/spot-hat \\
      --model /models/stable-diffusion-2-1-base
  fields3d edit out/mug/checkpoint.safetensors "made of gold" -o out/gold --no-localise
  fields3d edit spot.safetensors "with a ball" --guidance target:spot-ball.obj -o out/ball
  fields3d edit out/spot/checkpoint.safetensors "wearing a party hat" -o out/spot-hat --resume

The checkpoint is one `fields3d nerf`, `fields3d generate` or `fields3d edit` wrote. It is distilled
into a voxel grid (--resolution per axis), edited by score distillation with a regulariser that
keeps the density grid correlated with the original (--reg-weight), and the edit is localised
(a graph cut of the prior's cross-attention, or of where the renders changed) and merged into the
original. Writes checkpoint.safetensors (`fields3d render` and `fields3d view` open it),
turntable.gif (before | after), mask.png, mesh.ply, metrics.json and config.json to OUT.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "edit",
        help=HELP["edit"],
        epilog=EDIT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Edit a trained radiance field with a text prompt: score distillation on a "
        "voxel grid distilled from it, kept close to the original and localised.",
    )
    p.add_argument("checkpoint", help="the checkpoint to edit (.safetensors)")
    p.add_argument("prompt", help='the edit, e.g. "wearing a party hat"')
    p.add_argument("-o", "--out", default="out/edit", help="output folder (default: %(default)s)")
    p.add_argument("--model", help="Stable Diffusion folder (default: $FIELDS3D_SD_MODEL)")
    p.add_argument(
        "--guidance", help="the prior: stable_diffusion (default) or target:MESH_OR_CHECKPOINT"
    )
    p.add_argument("--steps", type=int, help="edit steps (default: 400)")
    p.add_argument(
        "--reg-weight",
        type=float,
        help="weight of the density-correlation regulariser (default: 5)",
    )
    p.add_argument("--resolution", type=int, help="voxels per axis of the grid (default: 128)")
    p.add_argument("--render-size", type=int, help="render size in pixels (default: 64)")
    p.add_argument("--lr", type=float, help="Adam's learning rate (default: 0.2)")
    p.add_argument(
        "--localise",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="confine the edit to where it happened (default: on)",
    )
    p.add_argument(
        "--localise-words",
        help='the words of the prompt whose attention localises the edit (default: all), e.g. "party hat"',
    )
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument("--device", choices=DEVICES, help="default: auto")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


OPTIONS = (
    ("model", "model"),
    ("guidance", "guidance"),
    ("steps", "steps"),
    ("reg_weight", "reg_weight"),
    ("resolution", "resolution"),
    ("render_size", "render_size"),
    ("lr", "lr"),
    ("localise", "localise"),
    ("localise_words", "localise_words"),
    ("seed", "seed"),
    ("device", "device"),
)


def run(args: argparse.Namespace) -> int:
    from ..pipelines.edit import EditConfig, edit

    settings = {key: getattr(args, arg) for arg, key in OPTIONS if getattr(args, arg) is not None}
    config = EditConfig(
        checkpoint=args.checkpoint,
        prompt=args.prompt,
        output=args.out,
        resume=args.resume,
        **settings,
    )
    result = edit(config, progress=not args.quiet)
    m = result.metrics
    print(f"distilled   PSNR {m['distill']['psnr']:.2f} dB against the source's renders")
    print(f"edited      {result.steps} steps in {result.edit_seconds:.1f} s")
    localised = m["localise"] or {}
    print(f"localised   {localised.get('method', 'no')}: {100 * m['mask_fraction']:.1f}% of voxels")
    for name, path in result.paths.items():
        print(f"{name:<12}{path}")
    return 0
