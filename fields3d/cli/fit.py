"""``fields3d fit-image`` and ``fit-sdf``: fit an encoding + MLP to an image or a mesh's SDF."""

from __future__ import annotations

import argparse
import dataclasses

from ._common import DEVICES, ENCODING_HELP, HELP, parse_encoding

FIT_IMAGE_EXAMPLE = """example:
  fields3d fit-image assets/images/astronaut.png -o out/astronaut
  fields3d fit-image photo.jpg --steps 2000 --log2-hashmap-size 22 --device cuda
  fields3d fit-image photo.jpg --encoding '{"type": "hash_grid", "n_levels": 8}'

writes fit.png, comparison.png (target | fit | 4 x error), metrics.json and config.json to OUT.
"""


FIT_SDF_EXAMPLE = """example:
  fields3d fit-sdf assets/meshes/spot.obj -o out/spot-sdf
  fields3d fit-sdf model.obj -o out/model --steps 3000 --device cuda
  fields3d fit-sdf model.obj --encoding '{"type": "hash_grid", "log2_hashmap_size": 19}' --eikonal 0.1

writes mesh.ply (the zero level set, in the input's coordinates), metrics.json (iou, chamfer_l1,
normal_consistency, f_score, n_params, encoding, train_seconds, steps) and config.json to OUT.
"""


def add_fit_image(sub) -> None:
    from ..pipelines.fit_image import FitImageConfig

    default = {f.name: f.default for f in dataclasses.fields(FitImageConfig)}
    p = sub.add_parser(
        "fit-image",
        help=HELP["fit-image"],
        epilog=FIT_IMAGE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit a 2D encoding (a hash grid by default) + MLP to a PNG or JPEG image and report the "
        "PSNR of the fit.",
    )
    p.add_argument("image", help="path of a PNG or JPEG file")
    p.add_argument(
        "-o", "--out", default=default["out_dir"], help="output folder (default: %(default)s)"
    )
    p.add_argument(
        "--steps", type=int, default=default["steps"], help="training steps (default: %(default)s)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=default["batch_size"],
        help="random samples per step (default: %(default)s)",
    )
    p.add_argument("--encoding", help=ENCODING_HELP + " (default: a hash grid)")
    p.add_argument(
        "--log2-hashmap-size",
        type=int,
        help=f"log2 of the rows per hash-grid level (default: {default['log2_hashmap_size']})",
    )
    p.add_argument(
        "--n-levels", type=int, help=f"hash-grid levels (default: {default['n_levels']})"
    )
    p.add_argument(
        "--device", choices=DEVICES, default=default["device"], help="default: %(default)s"
    )
    p.add_argument(
        "--seed", type=int, default=default["seed"], help="random seed (default: %(default)s)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_fit_image)


def add_fit_sdf(sub) -> None:
    from ..pipelines.fit_sdf import FitSdfConfig

    default = {f.name: f.default for f in dataclasses.fields(FitSdfConfig)}
    p = sub.add_parser(
        "fit-sdf",
        help=HELP["fit-sdf"],
        epilog=FIT_SDF_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit a 3D encoding (a hash grid by default) + MLP to a mesh's signed distance, mesh its "
        "zero level set and report IoU, Chamfer-L1, normal consistency and F-score against the input.",
    )
    p.add_argument("mesh", help="a closed triangle mesh (.obj, .ply, .off, .stl, .glb)")
    p.add_argument(
        "-o", "--out", default=default["out_dir"], help="output folder (default: %(default)s)"
    )
    p.add_argument(
        "--encoding", help=ENCODING_HELP + " (default: a hash grid with 2^16 rows per level)"
    )
    p.add_argument(
        "--steps", type=int, default=default["steps"], help="training steps (default: %(default)s)"
    )
    p.add_argument(
        "--eikonal",
        type=float,
        default=default["eikonal_weight"],
        help="weight of the eikonal term; needs an encoding with double backward (default: %(default)s)",
    )
    p.add_argument(
        "--resolution",
        type=int,
        default=default["mc_resolution"],
        help="marching-cubes grid points per axis (default: %(default)s)",
    )
    p.add_argument(
        "--device", choices=DEVICES, default=default["device"], help="default: %(default)s"
    )
    p.add_argument(
        "--seed", type=int, default=default["seed"], help="random seed (default: %(default)s)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run_fit_sdf)


def run_fit_image(args: argparse.Namespace) -> int:
    from ..pipelines.fit_image import FitImageConfig, fit_image

    grid = {
        k: v
        for k, v in (("log2_hashmap_size", args.log2_hashmap_size), ("n_levels", args.n_levels))
        if v is not None
    }
    config = FitImageConfig(
        image=args.image,
        out_dir=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
        encoding=parse_encoding(args.encoding),
        **grid,
    )
    result = fit_image(config, progress=not args.quiet)
    print(f"psnr        {result.psnr:.2f} dB")
    print(
        f"seconds     {result.seconds:.1f} ({result.steps} steps on {result.device}, {result.n_params} parameters)"
    )
    print(f"encoding    {_describe_encoding(result.encoding)}")
    for name, path in result.paths.items():
        print(f"{name:<12}{path}")
    return 0


def _describe_encoding(config: dict) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in config.items() if k != "type")
    return f"{config['type']} ({settings})"


def run_fit_sdf(args: argparse.Namespace) -> int:
    from ..pipelines.fit_sdf import FitSdfConfig, fit_sdf

    config = FitSdfConfig(
        mesh=args.mesh,
        out_dir=args.out,
        encoding=parse_encoding(args.encoding),
        steps=args.steps,
        eikonal_weight=args.eikonal,
        mc_resolution=args.resolution,
        device=args.device,
        seed=args.seed,
    )
    result = fit_sdf(config, progress=not args.quiet)
    m = result.metrics
    print(f"iou         {result.iou:.4f}")
    if result.chamfer_l1 is None:
        print("surface     none: the field's zero level set is empty")
    else:
        print(
            f"surface     Chamfer-L1 {result.chamfer_l1:.5f} | NC {result.normal_consistency:.4f} | "
            f"F@1% {result.f_score:.4f} (distances in the input's bounding-box diagonals)"
        )
    print(
        f"trained     {result.train_seconds:.1f} s, {result.steps} steps on {result.device}, "
        f"{result.n_params} parameters"
    )
    print(f"encoding    {_describe_encoding(m['encoding'])}")
    for name, path in result.paths.items():
        print(f"{name:<12}{path}")
    return 0
