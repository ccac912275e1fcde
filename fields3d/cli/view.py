"""``fields3d view``: a field, mesh, point cloud or scene in the browser."""

from __future__ import annotations

import argparse

from ._common import DEVICES, HELP, add_serve_options, check_port

VIEW_EXAMPLE = """example:
  fields3d view out/nerf/spot/checkpoint.safetensors      # a NeRF, rendered from your camera
  fields3d view out/bunny/mesh.field.safetensors           # a recon field, sphere-traced
  fields3d view assets/meshes/spot.obj                     # a mesh; also point clouds
  fields3d view scenes/spot.toml --port 8090               # training cameras (+ the NeRF if trained)

prints the URL to open, serves until Ctrl-C. Needs viser: pip install 'fields3d[view]'.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "view",
        help=HELP["view"],
        epilog=VIEW_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve a live 3D viewer in the browser: fields are rendered by fields3d from "
        "each browser's camera, meshes and point clouds drawn by the browser.",
    )
    p.add_argument("path", help="a checkpoint, .field.safetensors, mesh, point cloud or job file")
    add_serve_options(p)
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: %(default)s")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..viewer import require_viser

    check_port(args.port)
    require_viser()
    from ..viewer.app import Viewer, serve
    from ..viewer.sources import open_source

    source = open_source(args.path, args.device)  # a bad PATH fails before any server starts
    viewer = Viewer(source, host=args.host, port=args.port)
    print(f"viewing     {source.path} ({source.kind})")
    print(f"open        {viewer.url}   (Ctrl-C to stop)", flush=True)
    serve(viewer)
    return 0
