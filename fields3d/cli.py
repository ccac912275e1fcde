"""The ``fields3d`` command: ``fields3d <verb> ...``; each verb calls one pipeline or query.

Errors fields3d raises on purpose (:class:`fields3d.errors.FieldsError`) print ``error: <message>``
to stderr and exit with status 2, without a traceback; argparse's usage errors also exit with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from .errors import FieldsError, first_line

DEVICES = ("auto", "cpu", "cuda")

INFO_EXAMPLE = """example:
  fields3d info          # version, backends (cpu, cuda), CUDA architectures, threads, GPUs
  fields3d info --json   # the same as one JSON object
"""

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
    "view": "look at a field, mesh, point cloud or scene in the browser",
}


def _add_info(sub) -> None:
    p = sub.add_parser(
        "info",
        help=HELP["info"],
        epilog=INFO_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the version, compiled backends, CUDA architectures, threads, torch and visible GPUs.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.set_defaults(run=_run_info)


def _add_fit_image(sub) -> None:
    from .pipelines.fit_image import FitImageConfig

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
    p.set_defaults(run=_run_fit_image)


def _add_fit_sdf(sub) -> None:
    from .pipelines.fit_sdf import FitSdfConfig

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
    p.set_defaults(run=_run_fit_sdf)


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


def _add_recon(sub) -> None:
    from .pipelines.recon import METHODS, ReconConfig

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
    _add_serve_options(p)
    p.set_defaults(run=_run_recon)


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


def _add_recon_batch(sub) -> None:
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
    p.set_defaults(run=_run_recon_batch)


def _add_mesh(sub) -> None:
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
    p.set_defaults(run=_run_mesh)


def _add_eval(sub) -> None:
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
    p.set_defaults(run=_run_eval)


NERF_EXAMPLE = """examples:
  fields3d nerf scenes/spot.toml                       # the shipped scene, settings from the job file
  fields3d nerf --data assets/scenes/spot -o out/spot --time-budget 120
  fields3d nerf --data my_capture -o out/capture --device cuda --steps 20000 --resume

DATA is a NeRF-synthetic folder (transforms_train.json / transforms_test.json) or an instant-NGP
folder (transforms.json). Writes metrics.json (psnr, ssim, train_seconds), test/r_<i>.png,
turntable.gif, config.json, mesh.ply (with --mesh) and checkpoint.safetensors (--resume continues
from it) to OUT.
"""


def _add_nerf(sub) -> None:
    p = sub.add_parser(
        "nerf",
        help=HELP["nerf"],
        epilog=NERF_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a hash-grid radiance field on posed RGBA pictures and evaluate it on the test views.",
    )
    p.add_argument("job", nargs="?", help="a TOML job file with a [nerf] table (see scenes/)")
    p.add_argument("--data", help="scene folder (overrides the job file)")
    p.add_argument("-o", "--out", help="output folder (default: the job file's, else out/nerf)")
    p.add_argument("--device", choices=DEVICES, help="default: the job file's, else auto")
    p.add_argument(
        "--time-budget", type=float, help="seconds of training (default: the job file's, else 600)"
    )
    p.add_argument(
        "--steps",
        type=int,
        help="training steps (stops at whichever of steps and time comes first)",
    )
    p.add_argument("--downscale", type=int, help="shrink the pictures by this integer factor")
    p.add_argument(
        "--mesh",
        type=int,
        metavar="RES",
        help="also write OUT/mesh.ply: the density's iso-surface "
        "on RES^3 points over the scene box",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--view", action="store_true", help="serve the live viewer while training (--host, --port)"
    )
    _add_serve_options(p)
    p.set_defaults(run=_run_nerf)


RENDER_EXAMPLE = """examples:
  fields3d render out/nerf/checkpoint.safetensors -o out/nerf/render --frames 60 --width 800
  fields3d render out/bunny/mesh.field.safetensors --frames 24     # a `fields3d recon` field

writes turntable.gif and orbit/frame_<k>.png to OUT. A NeRF is seen from cameras circling the
scene at its training views' mean distance and height, in pictures of their size unless --width
(the height follows the aspect); a reconstructed surface's field is sphere-traced from a ring
around it (+y up), in square pictures 400 pixels across unless --width. Frames an earlier run
left in OUT/orbit are replaced.
"""


def _add_render(sub) -> None:
    p = sub.add_parser(
        "render",
        help=HELP["render"],
        epilog=RENDER_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Render the field of a checkpoint written by `fields3d nerf` or `fields3d recon` from "
        "cameras orbiting the scene.",
    )
    p.add_argument("checkpoint", help="a NeRF checkpoint.safetensors or a recon .field.safetensors")
    p.add_argument("-o", "--out", help="output folder (default: render/ beside the checkpoint)")
    p.add_argument(
        "--frames", type=int, default=36, help="cameras around the scene (default: %(default)s)"
    )
    p.add_argument(
        "--width",
        type=int,
        help="picture width in pixels (default: a NeRF's training pictures', else 400)",
    )
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: %(default)s")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_render)


GENERATE_EXAMPLE = """examples:
  fields3d generate "a ceramic mug" -o out/mug --model /models/stable-diffusion-2-1-base
  fields3d generate --guidance target:assets/meshes/spot.obj -o out/spot --time-budget 600
  fields3d generate scenes/generate-target-spot.toml      # a job file
  fields3d generate scenes/generate-mug.toml --resume      # continue from OUT/checkpoint.safetensors

The prior is Stable Diffusion (a local SD 1.x/2.x folder in the diffusers layout from --model or
FIELDS3D_SD_MODEL; nothing is downloaded) or, with --guidance target:MESH_OR_CHECKPOINT, the
exact denoiser of a known object's renders (no model needed). Writes checkpoint.safetensors
(`fields3d render` opens it), turntable.gif, mesh.ply, mesh.glb, metrics.json and config.json to OUT.
"""


def _add_generate(sub) -> None:
    p = sub.add_parser(
        "generate",
        help=HELP["generate"],
        epilog=GENERATE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Optimise a hash-grid density and albedo field so that its renders from random "
        "cameras satisfy a 2D prior (score distillation), then write its mesh and a turntable.",
    )
    p.add_argument(
        "prompt", nargs="?", help="what to generate, or a TOML job file with a [generate] table"
    )
    p.add_argument("-o", "--out", help="output folder (default: the job file's, else out/generate)")
    p.add_argument("--model", help="Stable Diffusion folder (default: $FIELDS3D_SD_MODEL)")
    p.add_argument(
        "--guidance",
        help="the prior: stable_diffusion (default) or target:MESH_OR_CHECKPOINT",
    )
    p.add_argument(
        "--steps", type=int, help="optimisation steps (default: the job file's, else 1000)"
    )
    p.add_argument(
        "--time-budget", type=float, help="seconds of optimisation (stops at whichever comes first)"
    )
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument("--resolution", type=int, help="render size in pixels (default: 64)")
    p.add_argument("--device", choices=DEVICES, help="default: the job file's, else auto")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_generate)


VIEW_EXAMPLE = """example:
  fields3d view out/nerf/spot/checkpoint.safetensors      # a NeRF, rendered from your camera
  fields3d view out/bunny/mesh.field.safetensors           # a recon field, sphere-traced
  fields3d view assets/meshes/spot.obj                     # a mesh; also point clouds
  fields3d view scenes/spot.toml --port 8090               # training cameras (+ the NeRF if trained)

prints the URL to open, serves until Ctrl-C. Needs viser: pip install 'fields3d[view]'.
"""


def _add_view(sub) -> None:
    p = sub.add_parser(
        "view",
        help=HELP["view"],
        epilog=VIEW_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve a live 3D viewer in the browser: fields are rendered by fields3d from "
        "each browser's camera, meshes and point clouds drawn by the browser.",
    )
    p.add_argument("path", help="a checkpoint, .field.safetensors, mesh, point cloud or job file")
    _add_serve_options(p)
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: %(default)s")
    p.set_defaults(run=_run_view)


def _add_serve_options(p) -> None:
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument("--port", type=int, help="port (default: the first free one from 8080)")


ADDERS = {
    "info": _add_info,
    "fit-image": _add_fit_image,
    "fit-sdf": _add_fit_sdf,
    "recon": _add_recon,
    "recon-batch": _add_recon_batch,
    "mesh": _add_mesh,
    "eval": _add_eval,
    "nerf": _add_nerf,
    "render": _add_render,
    "generate": _add_generate,
    "view": _add_view,
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


def parse_encoding(text: str | None) -> dict | None:
    """``--encoding``: None, a type name (``"dense_grid"`` -> ``{"type": "dense_grid"}``) or a JSON object."""
    from .encodings import available
    from .errors import InputError

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


def _run_fit_image(args: argparse.Namespace) -> int:
    from .pipelines.fit_image import FitImageConfig, fit_image

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


def _run_fit_sdf(args: argparse.Namespace) -> int:
    from .pipelines.fit_sdf import FitSdfConfig, fit_sdf

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


def _run_recon(args: argparse.Namespace) -> int:
    from .geometry.metrics import format_metrics
    from .pipelines.recon import ReconConfig, reconstruct

    config = ReconConfig(input=args.input, output=args.out, gt=args.gt, **_recon_settings(args))
    if args.view:
        result = _with_viewer(args, "sdf", lambda hook: reconstruct(config, not args.quiet, hook))
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


def _run_recon_batch(args: argparse.Namespace) -> int:
    from .pipelines.batch import BatchConfig, run_batch
    from .pipelines.batch.summary import format_table

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


def _run_mesh(args: argparse.Namespace) -> int:
    from .pipelines.remesh import remesh

    verts, faces, path = remesh(args.checkpoint, args.out, args.resolution, args.device)
    print(f"mesh        {len(verts)} vertices, {len(faces)} faces -> {path}")
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from ._checks import MAX_POINTS, check_int
    from .geometry.mesh_io import load_mesh
    from .geometry.metrics import format_metrics, mesh_metrics

    check_int(
        "--points", args.points, 1, MAX_POINTS
    )  # before reading the meshes; the message names the flag
    metrics = mesh_metrics(
        load_mesh(args.pred), load_mesh(args.gt), n_points=args.points, seed=args.seed
    )
    print(json.dumps(metrics, indent=2) if args.json else format_metrics(metrics))
    return 0


def _run_nerf(args: argparse.Namespace) -> int:
    from .errors import InputError
    from .pipelines.nerf import NerfConfig, load_job, train_nerf

    overrides = {
        k: v
        for k, v in (
            ("data", args.data),
            ("output", args.out),
            ("device", args.device),
            ("time_budget", args.time_budget),
            ("steps", args.steps),
            ("downscale", args.downscale),
            ("mesh_resolution", args.mesh),
        )
        if v is not None
    }
    if args.resume:
        overrides["resume"] = True
    if args.job is not None:
        config = load_job(args.job, overrides)
    elif "data" in overrides:
        config = NerfConfig(**overrides)
    else:
        raise InputError("pass a job file (e.g. scenes/spot.toml) or --data SCENE_FOLDER")
    if args.view:
        result = _with_viewer(args, "nerf", lambda hook: train_nerf(config, not args.quiet, hook))
    else:
        result = train_nerf(config, progress=not args.quiet)
    print(f"psnr        {result.psnr:.2f} dB   ssim {result.ssim:.3f}   (test views)")
    print(f"trained     {result.train_seconds:.1f} s, {result.steps} steps")
    if result.mesh is not None:
        mesh = result.mesh
        print(
            f"mesh        {mesh['note']}"
            if "note" in mesh
            else f"mesh        {mesh['vertices']} vertices, {mesh['faces']} faces (density level {mesh['level']:g})"
        )
    print(f"outputs     {result.out_dir}")
    return 0


def _run_render(args: argparse.Namespace) -> int:
    from ._checks import check_int
    from .pipelines.nerf.model import MAX_PICTURE_SIDE
    from .pipelines.orbit import render_orbit
    from .render.cameras import MAX_FRAMES

    check_int("--frames", args.frames, 1, MAX_FRAMES)  # before loading; the messages name the flags
    if args.width is not None:
        check_int("--width", args.width, 1, MAX_PICTURE_SIDE)
    result = render_orbit(
        args.checkpoint,
        args.out or None,  # -o '': the default, beside the checkpoint
        frames=args.frames,
        width=args.width,
        device=args.device,
        progress=not args.quiet,
    )
    print(
        f"rendered    {len(result.frames)} views of {result.width}x{result.height} ({result.subject})"
    )
    print(f"turntable   {result.gif}")
    print(f"frames      {result.frames_dir}")
    return 0


def _run_generate(args: argparse.Namespace) -> int:
    from .pipelines.generate import GenerateConfig, generate, load_job

    overrides = {
        k: v
        for k, v in (
            ("output", args.out),
            ("model", args.model),
            ("guidance", args.guidance),
            ("steps", args.steps),
            ("time_budget", args.time_budget),
            ("seed", args.seed),
            ("resolution", args.resolution),
            ("device", args.device),
        )
        if v is not None
    }
    if args.resume:
        overrides["resume"] = True
    if args.prompt is not None and args.prompt.endswith(".toml"):
        config = load_job(args.prompt, overrides)
    else:
        if args.prompt is not None:
            overrides["prompt"] = args.prompt
        config = GenerateConfig(**overrides)
    result = generate(config, progress=not args.quiet)
    m = result.metrics
    loss = "none" if result.loss is None else f"{result.loss:.4g}"
    print(f"generated   {result.steps} steps in {result.train_seconds:.1f} s (last loss {loss})")
    if m["mesh"] is not None:
        mesh = m["mesh"]
        print(
            f"mesh        {mesh['note']}"
            if "note" in mesh
            else f"mesh        {mesh['vertices']} vertices, {mesh['faces']} faces"
        )
    if m["target"] is not None:
        t = m["target"]
        chamfer = f", Chamfer-L1 {t['chamfer_l1']:.4f}" if "chamfer_l1" in t else ""
        print(f"target      silhouette IoU {t['silhouette']['iou']:.3f}{chamfer}")
    for name, path in result.paths.items():
        print(f"{name:<12}{path}")
    return 0


def _check_port(port) -> None:
    from ._checks import check_int

    if port is not None:
        check_int("--port", port, 1, 65535)


def _run_view(args: argparse.Namespace) -> int:
    from .viewer import require_viser

    _check_port(args.port)
    require_viser()
    from .viewer.app import Viewer, serve
    from .viewer.sources import open_source

    source = open_source(args.path, args.device)  # a bad PATH fails before any server starts
    viewer = Viewer(source, host=args.host, port=args.port)
    print(f"viewing     {source.path} ({source.kind})")
    print(f"open        {viewer.url}   (Ctrl-C to stop)", flush=True)
    serve(viewer)
    return 0


def _with_viewer(args: argparse.Namespace, kind: str, train):
    """Run ``train(hook)`` with the live viewer serving its snapshots; the server ends with it."""
    from pathlib import Path

    from .viewer import require_viser

    _check_port(args.port)
    require_viser()
    from .viewer.app import Viewer
    from .viewer.live import LiveTraining
    from .viewer.sources import Source

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
