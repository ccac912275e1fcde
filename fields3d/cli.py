"""The ``fields3d`` command: ``fields3d <verb> ...``; each verb calls one pipeline or query.

Errors fields3d raises on purpose (:class:`fields3d.errors.FieldsError`) print ``error: <message>``
to stderr and exit with status 2, without a traceback; argparse's usage errors also exit with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Sequence

from .errors import FieldsError

DEVICES = ("auto", "cpu", "cuda")

INFO_EXAMPLE = """example:
  fields3d info          # version, backends (cpu, cuda), CUDA architectures, threads, GPUs
  fields3d info --json   # the same as one JSON object
"""

FIT_IMAGE_EXAMPLE = """example:
  fields3d fit-image assets/images/astronaut.png -o out/astronaut
  fields3d fit-image photo.jpg --steps 2000 --log2-hashmap-size 22 --device cuda

writes fit.png, comparison.png (target | fit | 4 x error), metrics.json and config.json to OUT.
"""


def _add_info(sub) -> None:
    p = sub.add_parser(
        "info", help="what this installation can do", epilog=INFO_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the version, compiled backends, CUDA architectures, threads, torch and visible GPUs.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.set_defaults(run=_run_info)


def _add_fit_image(sub) -> None:
    from .pipelines.fit_image import FitImageConfig

    default = {f.name: f.default for f in dataclasses.fields(FitImageConfig)}
    p = sub.add_parser(
        "fit-image", help="fit a hash-grid field to an image", epilog=FIT_IMAGE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit a hash grid + MLP to a PNG or JPEG image and report the PSNR of the fit.",
    )
    p.add_argument("image", help="path of a PNG or JPEG file")
    p.add_argument("-o", "--out", default=default["out_dir"], help="output folder (default: %(default)s)")
    p.add_argument("--steps", type=int, default=default["steps"], help="training steps (default: %(default)s)")
    p.add_argument(
        "--batch-size", type=int, default=default["batch_size"], help="random samples per step (default: %(default)s)"
    )
    p.add_argument(
        "--log2-hashmap-size", type=int, default=default["log2_hashmap_size"],
        help="log2 of the rows per hash-grid level (default: %(default)s)",
    )
    p.add_argument("--n-levels", type=int, default=default["n_levels"], help="hash-grid levels (default: %(default)s)")
    p.add_argument("--device", choices=DEVICES, default=default["device"], help="default: %(default)s")
    p.add_argument("--seed", type=int, default=default["seed"], help="random seed (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_fit_image)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fields3d", description="3D neural fields on CPU and CUDA.",
        epilog="run `fields3d <command> --help` for a command's options and an example",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    _add_info(sub)
    _add_fit_image(sub)
    return parser


def _format_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "none"
    return "none" if value is None else str(value)


def _run_info(args: argparse.Namespace) -> int:
    from . import info

    data = info()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    width = max(len(k) for k in data)
    for key, value in data.items():
        print(f"{key:<{width}}  {_format_value(value)}")
    return 0


def _run_fit_image(args: argparse.Namespace) -> int:
    from .pipelines.fit_image import FitImageConfig, fit_image

    config = FitImageConfig(
        image=args.image, out_dir=args.out, steps=args.steps, batch_size=args.batch_size,
        log2_hashmap_size=args.log2_hashmap_size, n_levels=args.n_levels, device=args.device, seed=args.seed,
    )
    result = fit_image(config, progress=not args.quiet)
    print(f"psnr        {result.psnr:.2f} dB")
    print(f"seconds     {result.seconds:.1f} ({result.steps} steps on {result.device}, {result.n_params} parameters)")
    for name, path in result.paths.items():
        print(f"{name:<12}{path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fields3d`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except FieldsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
