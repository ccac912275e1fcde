"""``fields3d info``: what this installation can do."""

from __future__ import annotations

import argparse
import json

from ._common import HELP

INFO_EXAMPLE = """example:
  fields3d info          # version, backends (cpu, cuda), CUDA architectures, threads, GPUs
  fields3d info --json   # the same as one JSON object
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "info",
        help=HELP["info"],
        epilog=INFO_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the version, compiled backends, CUDA architectures, threads, torch and visible GPUs.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.set_defaults(run=run)


def _format_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "none"
    return "none" if value is None else str(value)


def run(args: argparse.Namespace) -> int:
    from .. import info

    data = info()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    width = max(len(k) for k in data)
    for key, value in data.items():
        print(f"{key:<{width}}  {_format_value(value)}")
    return 0
