"""``fields3d voromesh``: a watertight VoroMesh of a mesh, a point cloud or a saved field."""

from __future__ import annotations

import argparse

from ._common import DEVICES, HELP

EXAMPLE = """examples:
  fields3d voromesh assets/meshes/spot.obj -o out/spot/voromesh.ply
  fields3d voromesh assets/scans/bunny.ply -o out/bunny/voromesh.ply --generators 20000
  fields3d voromesh out/bunny/mesh.field.safetensors -o out/bunny/voromesh.obj --steps 200

writes the mesh, a report (OUT with .json: settings, watertightness, faces, timings and, for a mesh
input, Chamfer-L1, normal consistency and F-scores against it) and the generators with their
occupancy (OUT with .voromesh.safetensors).
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "voromesh",
        help=HELP["voromesh"],
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit Voronoi generators to the surface of a mesh, a point cloud (through a "
        "recon field) or a field checkpoint of fields3d recon, label them inside or outside by "
        "the signed distance, and write the Voronoi faces between the two as a watertight mesh "
        "(VoroMesh, Maruani et al., ICCV 2023).",
    )
    p.add_argument("input", help="mesh, point cloud or .field.safetensors file")
    p.add_argument("-o", "--out", required=True, help="output mesh (.ply, .obj, .off, .stl, .glb)")
    p.add_argument(
        "--generators",
        type=int,
        default=10_000,
        help="about how many generators (default: %(default)s)",
    )
    p.add_argument("--steps", type=int, default=400, help="fitting steps (default: %(default)s)")
    p.add_argument(
        "--samples",
        type=int,
        help="target points drawn on a mesh or a field's surface (default: 10 per generator)",
    )
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: %(default)s")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._checks import MAX_POINTS, check_int
    from ..geometry.metrics import format_metrics
    from ..pipelines.voromesh import MAX_GENERATORS, VoroMeshConfig, voromesh

    # before reading anything; the messages name the flags
    check_int("--generators", args.generators, 8, MAX_GENERATORS)
    check_int("--steps", args.steps, 0)
    if args.samples is not None:
        check_int("--samples", args.samples, 10, MAX_POINTS)
    config = VoroMeshConfig(
        args.input,
        args.out,
        generators=args.generators,
        steps=args.steps,
        samples=args.samples,
        device=args.device,
        seed=args.seed,
    )
    result = voromesh(config, progress=not args.quiet)
    report = result.report
    mesh = report["mesh"]
    print(
        f"mesh        {mesh['vertices']} vertices, {mesh['faces']} faces, "
        f"{'watertight' if mesh['watertight'] else 'NOT watertight'} "
        f"({report['generators']['count']} generators, {report['timings']['total_s']:.1f} s)"
    )
    if "metrics" in report:
        print(f"metrics     {format_metrics(report['metrics'])}")
    for name, path in result.paths.items():
        print(f"{name:<12}{path}")
    return 0
