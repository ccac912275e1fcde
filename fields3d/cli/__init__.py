"""The ``fields3d`` command: ``fields3d <verb> ...``; each verb calls one pipeline or query.

Errors fields3d raises on purpose (:class:`fields3d.errors.FieldsError`) print ``error: <message>``
to stderr and exit with status 2, without a traceback; argparse's usage errors also exit with 2.

Each verb family is one module with its parser and its run function: ``info``, ``fit`` (fit-image,
fit-sdf), ``recon`` (recon, recon-batch, mesh, eval), ``nerf`` (nerf, render), ``generate``,
``view``, ``mosaic`` (mosaic-sdf) and ``voromesh``; ``_common`` holds what they share. They
import torch and the pipelines only inside their functions, and only the verb being run gets its
options, so ``fields3d --help`` lists every verb without importing torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import FieldsError, first_line
from . import edit, fit, generate, info, mosaic, nerf, recon, view, voromesh
from ._common import HELP, parse_encoding

__all__ = ["build_parser", "main", "parse_encoding"]


# Each verb's parser, added only for the verb being run (its options' defaults may import torch).
ADDERS = {
    "info": info.add_parser,
    "fit-image": fit.add_fit_image,
    "fit-sdf": fit.add_fit_sdf,
    "recon": recon.add_recon,
    "recon-batch": recon.add_recon_batch,
    "mesh": recon.add_mesh,
    "eval": recon.add_eval,
    "nerf": nerf.add_nerf,
    "render": nerf.add_render,
    "generate": generate.add_parser,
    "edit": edit.add_parser,
    "view": view.add_parser,
    "mosaic-sdf": mosaic.add_parser,
    "voromesh": voromesh.add_parser,
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, the options of that command alone (``""``: of none).

    The other commands are still listed with their one-line help, so ``fields3d --help`` and a
    mistyped command read the same, without importing the pipelines (and torch) first.
    """
    parser = argparse.ArgumentParser(
        prog="fields3d",
        description="3D neural fields on CPU and CUDA.",
        epilog="run `fields3d <command> --help` for a command's options and an example",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, add in ADDERS.items():
        if only is None or name == only:
            add(sub)
        else:
            sub.add_parser(name, help=HELP[name])
    return parser


def _command_in(argv: Sequence[str]) -> str:
    """The command ``argv`` names (its first argument, the parser having no options of its own), else ``""``."""
    return argv[0] if argv and argv[0] in ADDERS else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fields3d`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except FieldsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the disk or the file system refused (full, read-only, permissions)
        where = exc.filename2 or exc.filename
        print(
            f"error: {exc.strerror or exc}{f': {where}' if where else ''}; check the paths and the disk",
            file=sys.stderr,
        )
        return 2
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise
        print(
            f"error: out of memory ({first_line(exc)}); use smaller settings (resolution, table size, batch, "
            "samples), or a machine with more memory",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _out_of_memory(exc: BaseException) -> bool:
    """numpy's MemoryError, torch's OutOfMemoryError (CUDA) or its CPU allocator's RuntimeError."""
    return (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or ("can't allocate memory" in str(exc) or "not enough memory" in str(exc))
    )
