"""What the verbs share: devices, the one-line help, ``--encoding``, the live viewer's options."""

from __future__ import annotations

import argparse
import json

DEVICES = ("auto", "cpu", "cuda")


ENCODING_HELP = (
    "the encoding: a registered type name (its default settings) or a JSON object such as "
    '\'{"type": "hash_grid", "n_levels": 8}\'; n_input_dims may be left out'
)


# One line per command for `fields3d --help`: listing them needs no command's options, whose
# defaults come from pipeline modules that import torch (seconds).
HELP = {
    "info": "what this installation can do",
    "fit-image": "fit an encoding + MLP field to an image",
    "fit-sdf": "fit a signed distance field to a mesh",
    "recon": "reconstruct a mesh from a point cloud",
    "recon-batch": "reconstruct many point clouds, on this machine or a Ray cluster",
    "mesh": "mesh a saved field",
    "eval": "compare a mesh with a ground truth",
    "nerf": "train a NeRF on posed pictures",
    "render": "render a trained NeRF or a reconstructed field around the scene",
    "generate": "generate a 3D object from a text prompt (score distillation)",
    "edit": "edit a trained radiance field with a text prompt (Vox-E)",
    "view": "look at a field, mesh, point cloud or scene in the browser",
    "mosaic-sdf": "convert a mesh to a Mosaic-SDF (local SDF grids), re-mesh and compare it",
    "voromesh": "a watertight Voronoi-face mesh (VoroMesh) of a mesh, point cloud or field",
}


def parse_encoding(text: str | None) -> dict | None:
    """``--encoding``: None, a type name (``"dense_grid"`` -> ``{"type": "dense_grid"}``) or a JSON object."""
    from ..encodings import available
    from ..errors import InputError

    if text is None:
        return None
    if text.strip().isidentifier():
        return {"type": text.strip()}
    want = f"--encoding must be an encoding type name ({', '.join(available())}) or a JSON object"
    try:
        value = json.loads(text)
    except (
        ValueError,
        RecursionError,
    ) as exc:  # bad JSON, a 5000-digit number, nesting past the stack
        raise InputError(f"{want}; {text[:200]!r} is neither (JSON: {exc})") from None
    if not isinstance(value, dict):
        raise InputError(f"{want}, got a JSON {type(value).__name__}: {text!r}")
    return value


def add_serve_options(p) -> None:
    """``--host`` and ``--port`` of the live viewer (`view`, and `nerf` and `recon` with --view)."""
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument("--port", type=int, help="port (default: the first free one from 8080)")


def check_port(port) -> None:
    """Refuse a ``--port`` outside 1..65535 before any server starts (the message names the flag)."""
    from .._checks import check_int

    if port is not None:
        check_int("--port", port, 1, 65535)


def with_viewer(args: argparse.Namespace, kind: str, train):
    """Run ``train(hook)`` with the live viewer serving its snapshots; the server ends with it."""
    from pathlib import Path

    from ..viewer import require_viser

    check_port(args.port)
    require_viser()
    from ..viewer.app import Viewer
    from ..viewer.live import LiveTraining
    from ..viewer.sources import Source

    live = LiveTraining()
    out = Path(args.out or ".") / "live"
    viewer = Viewer(Source(kind, out), host=args.host, port=args.port, live=live)
    print(
        f"open        {viewer.url}   (live training: pause, resume, stop from the page)", flush=True
    )
    try:
        return train(live)
    finally:
        viewer.close()
