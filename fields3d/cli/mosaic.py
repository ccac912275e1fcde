"""``fields3d mosaic-sdf``: a mesh as a Mosaic-SDF (local SDF grids), re-meshed and judged."""

from __future__ import annotations

import argparse

from ._common import DEVICES, HELP

EXAMPLE = """examples:
  fields3d mosaic-sdf assets/meshes/spot.obj -o out/spot.safetensors
  fields3d mosaic-sdf model.obj -o out/model.safetensors --volumes 512 --resolution 5 --finetune-steps 200
  fields3d mosaic-sdf out/spot.safetensors -o out/spot-again.safetensors --gt assets/meshes/spot.obj

writes OUT (the Mosaic-SDF: one float tensor of shape (volumes, 3 + 1 + resolution^3), safetensors),
OUT with .ply (its zero level set by marching cubes) and OUT with .json (Chamfer-L1, normal
consistency and F-score against the input mesh, conversion seconds, share of points undefined).
"""

# The defaults, written out so that the help needs no torch (MosaicConfig holds the same).
DEFAULTS = {"volumes": 1024, "resolution": 7, "finetune_steps": 0, "mesh_resolution": 256}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "mosaic-sdf",
        help=HELP["mosaic-sdf"],
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert a closed mesh to a Mosaic-SDF (Yariv et al. 2024): volumes of "
        "resolution^3 signed distances centred on the surface by farthest-point sampling, blended "
        "where they overlap and undefined outside them; optionally fine-tune it, then mesh it and "
        "compare with the input. A saved Mosaic-SDF (.safetensors) as input is re-meshed.",
    )
    p.add_argument(
        "input", help="a closed triangle mesh (.obj .ply .off .stl .glb) or a .safetensors"
    )
    p.add_argument("-o", "--out", required=True, help="the Mosaic-SDF file to write (.safetensors)")
    p.add_argument(
        "--volumes", type=int, default=DEFAULTS["volumes"], help="K volumes (default: %(default)s)"
    )
    p.add_argument(
        "--resolution",
        type=int,
        default=DEFAULTS["resolution"],
        help="values per axis of each volume (default: %(default)s)",
    )
    p.add_argument(
        "--finetune-steps",
        type=int,
        default=DEFAULTS["finetune_steps"],
        help="Adam steps on the mesh's SDF after the conversion (default: %(default)s)",
    )
    p.add_argument(
        "--mesh-resolution",
        type=int,
        default=DEFAULTS["mesh_resolution"],
        help="marching-cubes points along the longest side (default: %(default)s)",
    )
    p.add_argument("--gt", help="reference mesh for a saved input (metrics, fine-tuning)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: %(default)s")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..geometry.metrics import format_metrics
    from ..pipelines.mosaic_sdf import MosaicConfig, make_mosaic

    config = MosaicConfig(
        input=args.input,
        out=args.out,
        volumes=args.volumes,
        resolution=args.resolution,
        finetune_steps=args.finetune_steps,
        mesh_resolution=args.mesh_resolution,
        gt=args.gt,
        seed=args.seed,
        device=args.device,
    )
    result = make_mosaic(config, progress=not args.quiet)
    m = result.metrics
    print(
        f"mosaic      {m['volumes']} volumes of {m['resolution']}^3 ({m['values']} values), "
        f"scale {m['scale_median']:.4g}"
    )
    if m["convert_seconds"] is not None:
        print(f"converted   {m['convert_seconds']:.2f} s")
    if m["finetune"]:
        tuned = m["finetune"]
        print(
            f"fine-tuned  {tuned['steps']} steps in {m['finetune_seconds']:.1f} s, L1 "
            f"{tuned['l1_before']:.3e} -> {tuned['l1_after']:.3e}"
        )
    print(
        f"mesh        {m['mesh']['vertices']} vertices, {m['mesh']['faces']} faces; "
        f"undefined at {100 * m['undefined_share']:.1f}% of the grid's points"
    )
    if m.get("mesh_metrics"):
        print(f"metrics     {format_metrics(m['mesh_metrics'])}")
    for name, path in result.paths.items():
        print(f"{name:<12}{path}")
    return 0
