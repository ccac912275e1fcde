"""``fields3d recon``, ``recon-batch``, ``mesh`` and ``eval``: surfaces from point clouds.

recon and recon-batch share the options of one shape's reconstruction; mesh re-meshes the field
recon saved, and eval scores a mesh against a ground truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence

from ._common import DEVICES, HELP, add_serve_options, with_viewer

RECON_EXAMPLE = """examples:
  fields3d recon assets/scans/bunny.ply -o out/bunny/mesh.ply
  fields3d recon scan.xyz -o mesh.obj --method poisson --gt reference.obj
  fields3d recon model.obj -o mesh.ply --method neural --device cuda --resolution 512

writes the mesh, a picture (OUT with .png), a report (OUT with .json: settings, timings, metrics with
--gt) and, for gridpull and neural, the field (OUT with .field.safetensors; re-mesh it with
`fields3d mesh`).
"""


MESH_EXAMPLE = """example:
  fields3d mesh out/bunny/mesh.field.safetensors -o out/bunny/mesh-512.ply --resolution 512
"""


EVAL_EXAMPLE = """example:
  fields3d eval out/bunny/mesh.ply assets/meshes/stanford-bunny.obj --json
"""


def add_recon(sub) -> None:
    from ..pipelines.recon import METHODS, ReconConfig

    default = {f.name: f.default for f in dataclasses.fields(ReconConfig)}
    p = sub.add_parser(
        "recon",
        help=HELP["recon"],
        epilog=RECON_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reconstruct a surface mesh from a point cloud (.ply, .xyz, .pts, .txt, .npy) or from "
        "points sampled on a mesh (.obj, .off, .stl, .glb, .ply).",
    )
    p.add_argument("input", help="point cloud or mesh file")
    p.add_argument(
        "-o", "--out", default=default["output"], help="output mesh (default: %(default)s)"
    )
    p.add_argument(
        "--gt", default=None, help="ground-truth mesh: report Chamfer, normal consistency, F-scores"
    )
    _add_recon_options(p, default, METHODS)
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--view", action="store_true", help="serve the live viewer while fitting (--host, --port)"
    )
    add_serve_options(p)
    p.set_defaults(run=run_recon)


def _add_recon_options(p, default: dict | None, methods: Sequence[str] | None) -> None:
    """The options of one shape's reconstruction, shared by `recon` and `recon-batch`.

    ``default``: ReconConfig's defaults, shown in the help; None leaves every option None when
    not given (ReconConfig's defaults then apply) so that `recon-batch --help` imports no torch.
    """

    def dflt(key: str):
        return None if default is None else default[key]

    shown = "%(default)s" if default is not None else "as `fields3d recon`"
    p.add_argument(
        "--method",
        choices=methods,
        default=dflt("method"),
        help=f"{'' if methods else 'gridpull, neural or poisson '}(default: {shown})".lstrip(),
    )
    p.add_argument(
        "--resolution",
        type=int,
        default=dflt("resolution"),
        help=f"grid points per axis (Poisson: octree depth log2 of it) (default: {shown})",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="optimisation steps (default: the method's)"
    )
    p.add_argument("--device", choices=DEVICES, default=dflt("device"), help=f"default: {shown}")
    p.add_argument(
        "--samples",
        type=int,
        default=dflt("n_samples"),
        help=f"points sampled when the input is a mesh (default: {shown})",
    )
    p.add_argument("--remove-outliers", action="store_true", help="drop statistical outliers first")
    p.add_argument(
        "--trim",
        type=float,
        default=dflt("trim"),
        help="drop faces farther than this many gap radii (the 99th percentile of the points' "
        "8th-neighbour distance) from every point: surface invented across holes; 0 keeps the "
        f"surface closed (default: {shown})",
    )
    p.add_argument("--no-picture", action="store_true", help="do not render OUT.png")
    p.add_argument("--seed", type=int, default=dflt("seed"), help=f"random seed (default: {shown})")
    p.add_argument(
        "--field-modulation",
        choices=("none", "cam"),
        default=dflt("field_modulation"),
        help="cam: Coordinate-Aware Modulation of the neural SDF's MLP (--method neural; "
        f"default: {shown})",
    )


def _recon_settings(args: argparse.Namespace) -> dict:
    """ReconConfig fields from the options of :func:`_add_recon_options` (those given)."""
    settings = {
        "method": args.method,
        "resolution": args.resolution,
        "steps": args.steps,
        "device": args.device,
        "n_samples": args.samples,
        "trim": args.trim,
        "seed": args.seed,
        "field_modulation": args.field_modulation,
    }
    settings = {k: v for k, v in settings.items() if v is not None}
    return {**settings, "remove_outliers": args.remove_outliers, "picture": not args.no_picture}


RECON_BATCH_EXAMPLE = """examples:
  fields3d recon-batch assets/meshes assets/scans/bunny.ply -o out/batch --resolution 128
  fields3d recon-batch 'scans/**/*.ply' -o out/scans --gt references/ --workers 2
  fields3d recon-batch scans/ -o /shared/out --ray --ray-address auto --device cuda

writes OUT/NAME/mesh.ply (+ mesh.png, mesh.json, mesh.field.safetensors) per shape,
OUT/manifest.jsonl (one line per shape: input, outputs, status, seconds, metrics, error),
OUT/summary.csv, OUT/summary.md and OUT/contact_sheet.png. A rerun skips the shapes done with
the same settings (--force redoes them); the exit status is 1 when any shape failed.
"""


def add_recon_batch(sub) -> None:
    p = sub.add_parser(
        "recon-batch",
        help=HELP["recon-batch"],
        epilog=RECON_BATCH_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reconstruct many point clouds or meshes, as `fields3d recon` does each, in worker "
        "processes on this machine or as tasks on a Ray cluster.",
    )
    p.add_argument("inputs", nargs="+", help="point cloud or mesh files, folders, globs")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument(
        "--gt", default=None, help="folder of reference meshes, paired with the inputs by name"
    )
    p.add_argument(
        "--format",
        default="ply",
        choices=("ply", "obj", "off", "stl", "glb"),
        help="mesh format (default: %(default)s)",
    )
    _add_recon_options(p, None, None)
    p.add_argument(
        "--workers", type=int, help="shapes at once (default: one per core; 1 with --device cuda)"
    )
    p.add_argument(
        "--threads",
        type=int,
        help="threads per shape; with --ray the CPUs each task asks for (default: the cores "
        "shared among the workers; 1 with --ray)",
    )
    p.add_argument("--force", action="store_true", help="redo the shapes the manifest holds")
    p.add_argument(
        "--ray",
        action="store_true",
        help="run each shape as a Ray task (pip install 'fields3d[ray]')",
    )
    p.add_argument(
        "--ray-address",
        metavar="auto|HOST:PORT",
        help="join a running Ray cluster (default: a local Ray for this batch)",
    )
    p.add_argument(
        "--gpus-per-task",
        type=float,
        help="GPUs each Ray task asks for (default: 1 with --device cuda, else 0)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        help="Ray's retries of a shape whose worker died (default: %(default)s)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_recon_batch)


def add_mesh(sub) -> None:
    p = sub.add_parser(
        "mesh",
        help=HELP["mesh"],
        epilog=MESH_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Extract the zero level set of a field checkpoint written by `fields3d recon`.",
    )
    p.add_argument("checkpoint", help="a .field.safetensors file")
    p.add_argument("-o", "--out", required=True, help="output mesh (.ply, .obj, .off, .stl, .glb)")
    p.add_argument(
        "--resolution", type=int, default=256, help="grid points per axis (default: %(default)s)"
    )
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: %(default)s")
    p.set_defaults(run=run_mesh)


def add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        help=HELP["eval"],
        epilog=EVAL_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Chamfer-L1/L2, normal consistency and F-scores at 1%% and 0.5%% of the ground truth's "
        "bounding-box diagonal, on 100k samples per surface.",
    )
    p.add_argument("pred", help="reconstructed mesh")
    p.add_argument("gt", help="ground-truth mesh")
    p.add_argument(
        "--points", type=int, default=100_000, help="samples per surface (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_eval)


def run_recon(args: argparse.Namespace) -> int:
    from ..geometry.metrics import format_metrics
    from ..pipelines.recon import ReconConfig, reconstruct

    config = ReconConfig(input=args.input, output=args.out, gt=args.gt, **_recon_settings(args))
    if args.view:
        result = with_viewer(args, "sdf", lambda hook: reconstruct(config, not args.quiet, hook))
    else:
        result = reconstruct(config, progress=not args.quiet)
    report = result.report
    print(
        f"mesh        {report['mesh']['vertices']} vertices, {report['mesh']['faces']} faces "
        f"({config.method}, {report['timings']['total_s']:.1f} s on {report['config']['device']})"
    )
    if "metrics" in report:
        print(f"metrics     {format_metrics(report['metrics'])}")
    for name, path in result.paths.items():
        print(f"{name:<12}{path}")
    return 0


def run_recon_batch(args: argparse.Namespace) -> int:
    from ..pipelines.batch import BatchConfig, run_batch
    from ..pipelines.batch.summary import format_table

    if args.ray_address is not None and not args.ray:
        args.ray = True  # --ray-address alone means Ray
    config = BatchConfig(
        inputs=args.inputs,
        outdir=args.out,
        recon=_recon_settings(args),
        gt_dir=args.gt,
        mesh_format="." + args.format,
        workers=args.workers,
        threads=args.threads,
        force=args.force,
        ray=args.ray,
        ray_address=args.ray_address,
        gpus_per_task=args.gpus_per_task,
        retries=args.retries,
    )
    result = run_batch(config, progress=not args.quiet)
    print(format_table(result.records))
    failed = len(result.failed)
    print(
        f"shapes        {len(result.records)}: {len(result.records) - failed} done, {failed} failed "
        f"({result.ran} run now, {result.skipped} already in the manifest; {result.seconds:.1f} s)"
    )
    for name, path in result.paths.items():
        print(f"{name:<14}{path}")
    return 1 if failed else 0


def run_mesh(args: argparse.Namespace) -> int:
    from ..pipelines.remesh import remesh

    verts, faces, path = remesh(args.checkpoint, args.out, args.resolution, args.device)
    print(f"mesh        {len(verts)} vertices, {len(faces)} faces -> {path}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from .._checks import MAX_POINTS, check_int
    from ..geometry.mesh_io import load_mesh
    from ..geometry.metrics import format_metrics, mesh_metrics

    check_int(
        "--points", args.points, 1, MAX_POINTS
    )  # before reading the meshes; the message names the flag
    metrics = mesh_metrics(
        load_mesh(args.pred), load_mesh(args.gt), n_points=args.points, seed=args.seed
    )
    print(json.dumps(metrics, indent=2) if args.json else format_metrics(metrics))
    return 0
