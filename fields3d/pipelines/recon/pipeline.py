"""``reconstruct``: point cloud file in, mesh + picture + report (+ field checkpoint) out.

Steps: read the input (a point cloud, or a mesh sampled into one, and a scan's view directions
where its PLY has them), drop isolated points (``fields3d/pipelines/recon/inputs.py``) and
optionally statistical outliers, normalise into the cube ``[-1, 1]^3`` (the object within
``[-0.9, 0.9]``), run the method, extract the zero level set with marching cubes, keep the
connected components that hold at least ``min_component`` of the faces, optionally trim faces
farther than ``trim`` from every input point (the surface a method invents across holes), give
GridPull's mesh its Taubin rounds, map back to the input's coordinates and write:

- ``OUT`` (the mesh: .ply, .obj, .off, .stl or .glb),
- ``OUT.png`` beside it (four views, rendered headless),
- ``OUT.json`` (resolved config, timings, counts, and metrics when ``gt`` is given),
- ``OUT.field.safetensors`` for the field methods (re-mesh it with ``fields3d mesh``).

Every file is written atomically; nothing is written when the input is rejected.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ... import __version__
from ..._checks import MAX_GRID, MAX_POINTS, check_choice, check_int, check_seed, is_number
from ..._io import check_output
from ...errors import InputError
from ...geometry import mesh_io, pointcloud
from ...geometry.metrics import mesh_metrics
from ...geometry.pictures import save_mesh_png
from .._common import DEVICES, resolve_device, write_json
from .._progress import Stages
from ..hooks import TrainingHook
from . import inputs, postprocess
from .checkpoint import save_field
from .fit import extract, fit_field
from .model import SdfModel

METHODS = ("gridpull", "neural", "poisson")


@dataclass(frozen=True)
class ReconConfig:
    """Settings of :func:`reconstruct` (validated on construction; InputError names the bad one).

    ``resolution``: grid points per axis over the normalised cube for the field methods (the
    marching-cubes grid too); for Poisson the octree depth is ``ceil(log2(resolution))``.
    ``steps``: optimisation steps (None: the method's default). ``trim``: drop faces farther than
    ``trim`` gap radii from every input point (0 keeps the closed surface); the gap radius is the
    99th percentile of the points' 8th-neighbour distance (at least two coarse grid spacings),
    so faces that far from every point span a hole in the scan.
    ``min_component``: drop connected components with fewer than this fraction of the faces.

    ``input``: a point cloud or mesh file (:func:`fields3d.geometry.load_point_cloud`; a mesh is
    sampled into ``n_samples`` points); ``output``: the mesh to write (.ply, .obj, .off, .stl or
    .glb); ``method``: one of :data:`METHODS`; ``device``: ``"auto"``, ``"cpu"`` or ``"cuda"``;
    ``remove_outliers``: drop statistical outliers first (isolated points are always dropped); ``gt``: a reference mesh to score the
    result against; ``picture``: also write ``OUT.png``; ``seed``: for every random draw;
    ``field_modulation``: ``"cam"`` modulates the neural SDF's MLP (method ``"neural"`` only).

    Example:
        >>> from fields3d.pipelines.recon import ReconConfig
        >>> config = ReconConfig("scan.ply", "out/scan.obj", resolution=128)  # nothing read yet
        >>> config.method, config.resolution, config.steps, config.trim
        ('gridpull', 128, None, 1.0)
        >>> ReconConfig("scan.ply", method="marching")
        Traceback (most recent call last):
        ...
        fields3d.errors.InputError: method must be one of gridpull, neural, poisson, got 'marching'
    """

    input: str | Path
    output: str | Path = "out/recon/mesh.ply"
    method: str = "gridpull"
    resolution: int = 256
    steps: int | None = None
    device: str = "auto"
    n_samples: int = 50_000
    remove_outliers: bool = False
    trim: float = 1.0
    min_component: float = 0.01
    gt: str | Path | None = None
    picture: bool = True
    seed: int = 0
    field_modulation: str = "none"  # "cam" with method "neural": CAM on the neural SDF's MLP

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.device not in DEVICES:
            raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        check_int("resolution", self.resolution, 16, MAX_GRID)
        check_int("n_samples", self.n_samples, 10, MAX_POINTS)
        check_seed(self.seed)
        check_choice("field_modulation", self.field_modulation, ("none", "cam"))
        if self.field_modulation == "cam" and self.method != "neural":
            raise InputError(
                f"field_modulation 'cam' modulates the neural SDF's MLP: use it with method "
                f"'neural', got method {self.method!r}"
            )
        if self.steps is not None:
            check_int("steps", self.steps, 1)
        if not is_number(self.trim) or not 0 <= self.trim < math.inf:
            raise InputError(
                f"trim must be a finite number >= 0 (gap radii; 0 keeps every face), got {self.trim!r}"
            )
        if not is_number(self.min_component) or not 0 <= self.min_component < 1:
            raise InputError(
                f"min_component must be a fraction in [0, 1), got {self.min_component!r}"
            )
        suffix = Path(self.output).suffix.lower()
        if suffix not in mesh_io.MESH_EXTENSIONS:
            raise InputError(
                f"output must end in one of {', '.join(mesh_io.MESH_EXTENSIONS)}, got {str(self.output)!r}"
            )


@dataclass
class ReconResult:
    """What :func:`reconstruct` returns: the mesh (world coordinates), the report and the paths.

    ``verts`` ``(V, 3)`` float64 in the input's coordinates, ``faces`` ``(F, 3)`` int64 vertex
    ids, ``report`` what ``OUT.json`` holds, ``paths`` the files written by kind (``mesh``,
    ``report``, and ``picture`` and ``field`` when written).
    """

    verts: np.ndarray
    faces: np.ndarray
    report: dict
    paths: dict[str, Path]


def reconstruct(
    config: ReconConfig, progress: bool = True, hook: TrainingHook | None = None
) -> ReconResult:
    """Reconstruct ``config.input`` into a mesh at ``config.output`` (see the module docstring).

    Args:
        config: the :class:`ReconConfig`.
        progress: show the stages with a rich progress display.
        hook: a :class:`~fields3d.pipelines.hooks.TrainingHook` told of the field methods'
            optimisation steps; its snapshots are
            :class:`~fields3d.pipelines.recon.model.SdfModel` in the input's coordinates, and
            stopping it ends the optimisation early (the field is meshed and saved as it is).

    Returns:
        :class:`ReconResult`: the mesh (``verts`` ``(V, 3)`` float64 in the input's coordinates,
        ``faces`` ``(F, 3)`` int64), the report of ``OUT.json`` (``config``, ``input``, ``mesh``,
        ``method``, ``timings``, and ``metrics`` when ``config.gt`` is set) and the paths written.

    Raises:
        ModelNotFound: the input (or ``gt``) file is missing. InputError: a file that cannot be
            read, a cloud that is not a surface scan (too few points, NaN coordinates, all on one
            line...), or an output that cannot be written; nothing is written then.
            BackendUnavailable: ``device="cuda"`` without CUDA.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np, trimesh
        >>> from fields3d.geometry import sample_mesh
        >>> from fields3d.pipelines.recon import ReconConfig, reconstruct
        >>> sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
        >>> points = sample_mesh(sphere, 2000, seed=0).points  # (2000, 3), no normals used
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     tmp = pathlib.Path(tmp)
        ...     np.savetxt(tmp / "scan.xyz", points)
        ...     _ = sphere.export(tmp / "truth.obj")
        ...     config = ReconConfig(
        ...         tmp / "scan.xyz", tmp / "mesh.ply", resolution=32, steps=5, device="cpu",
        ...         gt=tmp / "truth.obj", picture=False,
        ...     )  # a coarse grid and few steps: seconds on one core
        ...     result = reconstruct(config, progress=False)
        ...     print(sorted(p.name for p in tmp.iterdir()))
        ['mesh.field.safetensors', 'mesh.json', 'mesh.ply', 'scan.xyz', 'truth.obj']
        >>> result.verts.shape[1], result.faces.dtype, 3000 < len(result.verts) < 4500
        (3, dtype('int64'), True)
        >>> metrics = result.report["metrics"]  # against the true sphere
        >>> metrics["chamfer_l1"] < 0.004, metrics["f_score@1%"] > 0.97
        (True, True)
    """
    if not isinstance(config, ReconConfig):
        raise InputError(f"config must be a ReconConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    config = dataclasses.replace(
        config,
        input=str(config.input),
        output=str(config.output),
        device=device.type,
        gt=None if config.gt is None else str(config.gt),
    )
    gt = mesh_io.load_mesh(config.gt) if config.gt is not None else None
    check_output(config.output)  # an output that cannot be written fails now, not after the fit
    timings: dict[str, float] = {}
    with Stages(progress) as stages:
        cloud, norm, screened = _prepare(config, stages, timings)
        verts, faces, field, info = _run_method(
            cloud, norm, config, device, stages, timings, hook, screened.view_dirs
        )
        out = Path(config.output)
        paths = {"mesh": mesh_io.save_mesh(verts, faces, out)}
        if field is not None:
            paths["field"] = save_field(out.with_suffix(".field.safetensors"), field, norm, config)
        if config.picture:
            with stages.stage("picture"):
                paths["picture"] = save_mesh_png(verts, faces, out.with_suffix(".png"))
    report = _report(config, cloud, screened, verts, faces, info, timings)
    if gt is not None:
        report["metrics"] = mesh_metrics((verts, faces), gt, seed=config.seed)
    paths["report"] = write_json(out.with_suffix(".json"), report)
    return ReconResult(verts, faces, report, paths)


def _prepare(config, stages, timings):
    with stages.stage("read"):
        start = time.perf_counter()
        cloud = pointcloud.load_point_cloud(
            config.input, n_samples=config.n_samples, seed=config.seed
        )
        screened = inputs.screen(cloud, config.input, config.remove_outliers)
        cloud = screened.cloud
        timings["read_s"] = time.perf_counter() - start
    try:  # a cloud too large, too far off or a line: often one stray point makes it so
        norm = pointcloud.Normalization.fit(cloud.points)
        pointcloud.check_not_a_line(cloud.points, cloud.source)
    except InputError as exc:
        raise InputError(
            f"{exc}; or look for far-off outliers (--remove-outliers drops them)"
        ) from None
    return cloud, norm, screened


def _distinct(points: np.ndarray, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``points`` without repeats and the indices of those kept (merged scans repeat points; the
    fits' spacing estimates, the distance to the 8th neighbour, are then 0), in their first order;
    InputError when too few are left, as when far-off points squeeze the rest of the cloud into one
    spot of the unit cube."""
    _, first = np.unique(points, axis=0, return_index=True)
    if len(first) < pointcloud.MIN_POINTS:
        extent = np.ptp(world, axis=0).max()
        raise InputError(
            f"the cloud holds {len(first)} distinct points once scaled into the unit cube (it spans "
            f"{extent:.3g}); at least {pointcloud.MIN_POINTS} are needed: look for far-off outliers "
            "(--remove-outliers drops them) or repeated points"
        )
    keep = np.arange(len(points)) if len(first) == len(points) else np.sort(first)
    return points[keep], keep


def _run_method(cloud, norm, config, device, stages, timings, hook=None, view_dirs=None):
    start = time.perf_counter()
    if config.method == "poisson":
        from ...geometry.poisson import poisson_reconstruct

        depth = int(np.ceil(np.log2(config.resolution)))
        with stages.stage(f"poisson (depth {depth})"):
            verts, faces, info = poisson_reconstruct(cloud.points, cloud.normals, depth=depth)
        timings["method_s"] = time.perf_counter() - start
        return verts, faces, None, {"depth": depth, **info}
    points, kept = _distinct(norm.to_unit(cloud.points).astype(np.float32), cloud.points)
    view_dirs = None if view_dirs is None else view_dirs[kept]
    kind = "band_sdf_grid" if config.method == "gridpull" else "neural_sdf"
    world = None if hook is None else _WorldHook(hook, norm, kind)
    field, info = fit_field(config.method, points, config, device, stages, world, view_dirs)
    info["distinct_points"] = len(points)
    timings["fit_s"] = time.perf_counter() - start
    with stages.stage("mesh"):
        start = time.perf_counter()
        verts, faces = extract(field, config.resolution, device)
        verts, faces, post = postprocess.clean(
            verts, faces, points, info["gap_radius"] * config.trim, config.min_component
        )
        rounds = info["settings"].get("mesh_smoothing", 0)
        verts = postprocess.taubin(verts, faces, rounds)
        post["taubin_iterations"] = rounds
        timings["mesh_s"] = time.perf_counter() - start
    return norm.to_world(verts), faces, field, {**info, **post}


class _WorldHook(TrainingHook):
    """Passes a fit's steps on, its unit-cube field snapshots as SdfModels in world coordinates."""

    def __init__(self, inner: TrainingHook, norm, kind: str) -> None:
        self.inner, self.norm, self.kind = inner, norm, kind

    def step(self, step, metrics, snapshot) -> None:
        def model():
            return SdfModel(snapshot().eval().requires_grad_(False), self.norm, self.kind)

        self.inner.step(step, metrics, model)

    def should_stop(self) -> bool:
        return self.inner.should_stop()


def _report(config, cloud, screened, verts, faces, info, timings) -> dict:
    return {
        "config": dataclasses.asdict(config),
        "input": {
            "points": len(cloud),
            "normals": cloud.normals is not None,
            "outliers_removed": screened.outliers,
            "isolated_removed": screened.isolated,
            "view_dirs": screened.view_dirs is not None,
        },
        "mesh": {"vertices": len(verts), "faces": len(faces)},
        "method": info,
        "timings": {**timings, "total_s": sum(timings.values())},
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fields3d": __version__,
    }
