"""Convert a mesh to a Mosaic-SDF, re-mesh it and judge it: ``make_mosaic`` (``fields3d mosaic-sdf``).

1. **Convert** the mesh (:func:`~fields3d.geometry.mosaic_convert.mosaic_from_mesh`: FPS centres,
   one scale of 1.5 times the covering radius, values from the mesh's signed distance), in the
   mesh's own coordinates; or read a saved Mosaic-SDF (a ``.safetensors`` input).
2. **Fine-tune** it, when ``finetune_steps > 0``, on the mesh's signed distance
   (:func:`~fields3d.geometry.mosaic_convert.finetune_mosaic`).
3. **Mesh** it with our marching cubes on ``mesh_resolution`` points along the longest side of
   the volumes' box (:func:`~fields3d.geometry.mosaic_convert.mesh_mosaic`).
4. **Judge** the mesh against the input (or ``gt``): Chamfer-L1, normal consistency and F-scores
   (:func:`~fields3d.geometry.mesh_metrics`), and the share of query points the field leaves
   undefined: of the meshing grid's points, and of points sampled on the reference surface.

Outputs, each written atomically: ``out`` (the tensor file, ``(K, 4 + k^3)``), ``out`` with
``.ply`` (the mesh) and with ``.json`` (the metrics and settings).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from .._checks import MAX_GRID, MAX_POINTS, check_int, check_seed
from .._io import check_output
from ..errors import InputError
from ..geometry import load_mesh, mesh_metrics, sample_mesh, save_mesh
from ..geometry.mosaic_convert import finetune_mosaic, mesh_mosaic, mosaic_from_mesh
from ..geometry.mosaic_sdf import MAX_RESOLUTION, MAX_VOLUMES, MosaicSDF, load_mosaic
from ..geometry.pointcloud import principal_spreads
from ..geometry.sdf import MeshSDF
from ._common import (
    DEVICES,
    check_path,
    device_name,
    resolve_device,
    timed,
    torch_threads,
    write_json,
)
from ._progress import Stages

MAX_STEPS = 10**7


@dataclass(frozen=True)
class MosaicConfig:
    """Settings of :func:`make_mosaic` (module docstring); validated on construction (InputError).

    ``input``: a mesh, or a ``.safetensors`` Mosaic-SDF to re-mesh; ``out``: the tensor file to
    write (``.safetensors``); ``gt``: the reference mesh for a saved input's metrics and
    fine-tuning (a mesh input is its own reference).

    Example:
        >>> from fields3d.pipelines.mosaic_sdf import MosaicConfig
        >>> config = MosaicConfig("spot.obj", "out/spot.safetensors")
        >>> config.volumes, config.resolution, config.finetune_steps, config.mesh_resolution
        (1024, 7, 0, 256)
        >>> MosaicConfig("spot.obj", "out/spot.ply")
        Traceback (most recent call last):
        ...
        fields3d.errors.InputError: out must be a .safetensors path (the Mosaic-SDF; the mesh and metrics go beside it), got 'out/spot.ply'
    """

    input: str | Path
    out: str | Path = "out/mosaic.safetensors"
    volumes: int = 1024
    resolution: int = 7
    finetune_steps: int = 0
    mesh_resolution: int = 256
    gt: str | Path | None = None
    eval_points: int = 100_000
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_path("input", self.input, "a mesh or a .safetensors Mosaic-SDF")
        check_path("out", self.out, "the .safetensors file to write")
        if self.gt is not None:
            check_path("gt", self.gt, "a reference mesh")
        if Path(self.out).suffix != ".safetensors":
            raise InputError(
                "out must be a .safetensors path (the Mosaic-SDF; the mesh and metrics go beside "
                f"it), got {str(self.out)!r}"
            )
        check_int("volumes", self.volumes, 1, MAX_VOLUMES)
        check_int("resolution", self.resolution, 2, MAX_RESOLUTION)
        if self.volumes * self.resolution**3 > MAX_POINTS:
            raise InputError(
                f"volumes x resolution^3 must be at most {MAX_POINTS} values (memory), got "
                f"{self.volumes} x {self.resolution}^3 = {self.volumes * self.resolution**3}"
            )
        check_int("finetune_steps", self.finetune_steps, 0, MAX_STEPS)
        check_int("mesh_resolution", self.mesh_resolution, 8, min(1024, MAX_GRID))
        check_int("eval_points", self.eval_points, 1, MAX_POINTS)
        check_seed(self.seed)
        if self.device not in DEVICES:
            raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")

    @property
    def saved_input(self) -> bool:
        return Path(self.input).suffix == ".safetensors"


@dataclass
class MosaicResult:
    """What :func:`make_mosaic` returns: the Mosaic-SDF, the metrics (as written) and the paths."""

    mosaic: MosaicSDF = dataclasses.field(repr=False)
    metrics: dict
    paths: dict[str, Path]


def make_mosaic(config: MosaicConfig, progress: bool = True) -> MosaicResult:
    """Convert (or read), fine-tune, mesh and judge a Mosaic-SDF; write the tensor file, mesh and metrics.

    Args:
        config: the :class:`MosaicConfig`.
        progress: show the stages with a rich progress display.

    Returns:
        :class:`MosaicResult`. ``metrics`` holds ``chamfer_l1``, ``normal_consistency``,
        ``f_score`` (at 1% of the reference's bounding-box diagonal; ``f_score@0.5%`` too) or None
        without a reference or a surface, ``convert_seconds``, ``finetune_seconds``,
        ``undefined_share`` (of the meshing grid's points), ``surface_undefined_share`` (of
        ``eval_points`` samples of the reference), sizes, timings and versions.

    Raises:
        ModelNotFound: the input (or ``gt``) does not exist.
        InputError: a mesh that cannot be read or has no area or inside, fine-tuning a saved input
            without ``gt``, an output that cannot be written.
        CheckpointError: a saved input that is corrupt or not a Mosaic-SDF.

    Example:
        >>> import pathlib, tempfile, trimesh
        >>> from fields3d.pipelines.mosaic_sdf import MosaicConfig, make_mosaic
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     tmp = pathlib.Path(tmp)
        ...     _ = trimesh.creation.icosphere(subdivisions=3).export(tmp / "ball.obj")
        ...     config = MosaicConfig(tmp / "ball.obj", tmp / "ball.safetensors", volumes=64,
        ...                           resolution=5, mesh_resolution=32, eval_points=20000, device="cpu")
        ...     result = make_mosaic(config, progress=False)
        ...     print(sorted(p.name for p in tmp.iterdir()))
        ['ball.json', 'ball.obj', 'ball.ply', 'ball.safetensors']
        >>> result.metrics["f_score"] > 0.95, result.metrics["surface_undefined_share"]
        (True, 0.0)
    """
    if not isinstance(config, MosaicConfig):
        raise InputError(f"config must be a MosaicConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    mesh = _reference(config)
    if config.saved_input:
        mosaic = load_mosaic(config.input, device)
    if config.finetune_steps and mesh is None:
        raise InputError(
            f"finetune_steps={config.finetune_steps} needs the mesh to fit: pass --gt MESH with "
            "a saved Mosaic-SDF, or convert the mesh itself"
        )
    out = Path(config.out)
    for path in (out, out.with_suffix(".ply"), out.with_suffix(".json")):
        check_output(path)  # fails now, not after the work
    timings: dict[str, float] = {}
    # one torch thread on the CPU: each chunk is a few dozen small ops, each ending at a barrier;
    # on 2 busy cores (load 5) meshing spot at 256^3 took 73 s with two threads, 9.6 s with one
    with Stages(progress) as stages, torch_threads(1 if device.type == "cpu" else None):
        if not config.saved_input:
            with timed(timings, "convert_seconds"), stages.stage("convert") as update:
                sdf = MeshSDF(mesh.vertices, mesh.faces)
                mosaic = mosaic_from_mesh(
                    mesh, config.volumes, config.resolution, seed=config.seed, sdf=sdf
                ).to(device)
                update(1)
        else:
            sdf = MeshSDF(mesh.vertices, mesh.faces) if mesh is not None else None
        tuned = _finetune(mosaic, mesh, sdf, config, stages, timings)
        with timed(timings, "mesh_seconds"), stages.stage("marching cubes", total=100) as update:
            verts, faces, undefined = mesh_mosaic(
                mosaic, config.mesh_resolution, progress=lambda f: update(round(100 * f))
            )
        with timed(timings, "metrics_seconds"), stages.stage("metrics") as update:
            judged = _judge(mosaic, verts, faces, mesh, config)
            update(1)
    sizes = {"vertices": len(verts), "faces": len(faces)}
    metrics = _metrics(config, mosaic, device, timings, tuned, undefined, judged, sizes)
    meta = {"source": str(config.input), "seconds": timings.get("convert_seconds")}
    paths = {
        "mosaic": mosaic.save(out, meta),
        "mesh": save_mesh(verts, faces, out.with_suffix(".ply")),
        "metrics": write_json(out.with_suffix(".json"), metrics),
    }
    return MosaicResult(mosaic, metrics, paths)


def _reference(config: MosaicConfig):
    """The mesh to fit and judge against: the input mesh, or ``gt`` for a saved input (or None)."""
    path = config.gt if config.saved_input else config.input
    if path is None:
        return None
    mesh = load_mesh(path)
    spread = principal_spreads(mesh.vertices)
    if not mesh.area > 0 or spread[0] <= 1e-6 * spread[2]:
        raise InputError(
            f"mesh {path} is flat or has no area, so it has no inside for a signed distance; "
            "mosaic-sdf needs a closed mesh around a solid"
        )
    return mesh


def _finetune(mosaic, mesh, sdf, config, stages, timings) -> dict | None:
    if not config.finetune_steps:
        return None
    with (
        timed(timings, "finetune_seconds"),
        stages.stage("fine-tune", total=config.finetune_steps) as update,
    ):
        before, after = finetune_mosaic(
            mosaic,
            mesh,
            config.finetune_steps,
            seed=config.seed,
            sdf=sdf,
            progress=lambda step, loss: update(step, f"L1 {loss:.2e}"),
        )
    return {"steps": config.finetune_steps, "l1_before": before, "l1_after": after}


def _judge(mosaic, verts, faces, mesh, config) -> dict:
    """Surface metrics against ``mesh`` and the share of its surface samples left undefined."""
    none = {"chamfer_l1": None, "normal_consistency": None, "f_score": None}
    if mesh is None:
        return {**none, "surface_undefined_share": None}
    points = sample_mesh(mesh, config.eval_points, seed=config.seed).points
    x = torch.as_tensor(points, dtype=mosaic.centres.dtype, device=mosaic.centres.device)
    with torch.no_grad():
        defined = mosaic(x).defined
    share = 1.0 - float(defined.float().mean())
    if len(faces) == 0:
        return {**none, "surface_undefined_share": share}
    m = mesh_metrics((verts, faces), mesh, n_points=config.eval_points, seed=config.seed)
    return {
        "chamfer_l1": m["chamfer_l1"],
        "normal_consistency": m["normal_consistency"],
        "f_score": m["f_score@1%"],
        "f_score@0.5%": m["f_score@0.5%"],
        "surface_undefined_share": share,
        "mesh_metrics": m,
    }


def _metrics(config, mosaic, device, timings, tuned, undefined, judged, sizes) -> dict:
    return {
        **judged,
        "undefined_share": undefined,
        "volumes": mosaic.n_volumes,
        "resolution": mosaic.resolution,
        "values": mosaic.n_volumes * mosaic.resolution**3,
        "scale_median": float(mosaic.scales.detach().median()),
        "convert_seconds": timings.get("convert_seconds"),
        "finetune_seconds": timings.get("finetune_seconds"),
        "finetune": tuned,
        "mesh_seconds": timings["mesh_seconds"],
        "mesh": sizes,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()},
        "device": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "fields3d": __version__,
    }
