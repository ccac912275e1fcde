"""``fields3d voromesh``: a VoroMesh of a mesh, a point cloud or a saved field.

1. **Read** the input into target surface points and a signed distance, both in the cube
   ``[-1, 1]^3`` (the object within ``[-0.9, 0.9]``): a *mesh* gives ``samples`` points drawn on
   it and its exact signed distance (:class:`~fields3d.geometry.sdf.MeshSDF`); a *point cloud*
   gives its points, and a field fitted to them as ``fields3d recon`` fits one (GridPull, the
   recon defaults at ``field_resolution``); a *field checkpoint* (``.field.safetensors`` from
   ``fields3d recon``) gives its values and ``samples`` points drawn on its marching-cubes mesh at
   ``field_resolution``.
2. **Initialise**: the corners of the grid voxels that hold a target point, on the grid whose
   count of them is nearest ``generators``
   (:func:`~fields3d.geometry.voromesh_fit.resolution_for`).
3. **Fit** the generators to the targets with the paper's loss and schedule
   (:func:`~fields3d.geometry.voromesh_fit.fit_generators`); the learning rate is
   :data:`LR_PER_SPACING` grid spacings (the paper's 5e-3 at its grid of 32).
4. **Label and extract**: a generator is inside where the signed distance at its cell's centroid
   is negative; the Voronoi faces between inside and outside cells are the mesh
   (:class:`~fields3d.geometry.voromesh.VoronoiDiagram`), mapped back to the input's coordinates.
5. **Write** ``OUT`` (the mesh), ``OUT.json`` (settings, mesh checks, timings and, for a mesh input,
   Chamfer-L1, normal consistency and F-scores against it) and ``OUT.voromesh.safetensors`` (the
   generators in the input's coordinates and their occupancy), each atomically.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh

from .. import __version__
from .._checks import MAX_GRID, MAX_POINTS, check_int, check_seed
from .._io import check_output
from ..checkpoint import save_checkpoint
from ..errors import InputError, ModelNotFound
from ..geometry import mesh_io, pointcloud
from ..geometry.metrics import mesh_metrics
from ..geometry.sdf import MeshSDF
from ..geometry.voromesh import VoronoiDiagram, check_surface
from ..geometry.voromesh_fit import fit_generators, grid_generators, resolution_for
from ._common import DEVICES, check_path, resolve_device, timed, torch_threads, write_json
from ._progress import Stages

#: Adam's learning rate in grid spacings of the initial grid (the paper: 5e-3 at 32^3 over [-1, 1]).
LR_PER_SPACING = 0.0775
#: Target points drawn per generator when ``samples`` is None: a face without targets is not
#: fitted (the paper draws 150 grid_n^2 points for its grid of grid_n^3).
SAMPLES_PER_GENERATOR = 10
#: The most generators a run may ask for (a Delaunay of 10^7 points takes tens of gigabytes).
MAX_GENERATORS = 10**7
MESH_ONLY = (".obj", ".off", ".stl", ".glb")
CLOUD_ONLY = (*pointcloud.TEXT_EXTENSIONS, ".npy")
ACCEPTED = (
    "a mesh (.ply, .obj, .off, .stl, .glb), a point cloud (.ply, .xyz, .pts, .txt, .npy) or a "
    "field checkpoint from fields3d recon (.field.safetensors)"
)


@dataclass(frozen=True)
class VoroMeshConfig:
    """Settings of :func:`voromesh` (see the module docstring); validated on construction.

    ``generators``: about how many generators to fit; ``steps``: Adam steps; ``samples``: target
    points drawn on a mesh (or a field's surface), None for :data:`SAMPLES_PER_GENERATOR` times
    ``generators`` (a face without targets is not fitted); ``batch_fraction``: the share of the targets
    each step uses; ``field_resolution``: the grid of a point cloud's fitted field, and of a
    saved field's marching cubes; ``field_steps``: the steps of that fit (None: GridPull's);
    ``eval_points``: samples a surface for the metrics.

    Example:
        >>> from fields3d.pipelines.voromesh import VoroMeshConfig
        >>> config = VoroMeshConfig("spot.obj", "out/spot.ply")  # nothing read yet
        >>> config.generators, config.steps, config.samples  # 10 targets a generator
        (10000, 400, 100000)
        >>> VoroMeshConfig("spot.obj", generators=1)
        Traceback (most recent call last):
        ...
        fields3d.errors.InputError: generators must be an integer from 8 to 10000000, got 1
    """

    input: str | Path
    output: str | Path = "out/voromesh/mesh.ply"
    generators: int = 10_000
    steps: int = 400
    samples: int | None = None
    batch_fraction: float = 0.2
    field_resolution: int = 128
    field_steps: int | None = None
    eval_points: int = 100_000
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_path("input", self.input, "a mesh, point cloud or field checkpoint")
        check_path("output", self.output, "the mesh to write")
        check_int("generators", self.generators, 8, MAX_GENERATORS)
        check_int("steps", self.steps, 0)
        if self.samples is None:
            object.__setattr__(self, "samples", SAMPLES_PER_GENERATOR * self.generators)
        check_int("samples", self.samples, pointcloud.MIN_POINTS, MAX_POINTS)
        check_int("field_resolution", self.field_resolution, 16, MAX_GRID)
        check_int("eval_points", self.eval_points, 1, MAX_POINTS)
        if self.field_steps is not None:
            check_int("field_steps", self.field_steps, 1)
        check_seed(self.seed)
        if not (isinstance(self.batch_fraction, (int, float)) and 0 < self.batch_fraction <= 1):
            raise InputError(
                f"batch_fraction must be a number in (0, 1], got {self.batch_fraction!r}"
            )
        if self.device not in DEVICES:
            raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if Path(self.output).suffix.lower() not in mesh_io.MESH_EXTENSIONS:
            raise InputError(
                f"output must end in one of {', '.join(mesh_io.MESH_EXTENSIONS)}, "
                f"got {str(self.output)!r}"
            )


@dataclass
class VoroMeshResult:
    """What :func:`voromesh` returns: the mesh (``verts`` ``(V, 3)`` float64 in the input's
    coordinates, ``faces`` ``(F, 3)`` int64), the generators ``(N, 3)`` float64 (input
    coordinates) and their ``occupancy`` ``(N,)`` bool, the report ``OUT.json`` holds and the
    paths written (``mesh``, ``report``, ``generators``)."""

    verts: np.ndarray
    faces: np.ndarray
    generators: np.ndarray
    occupancy: np.ndarray
    report: dict
    paths: dict[str, Path]


@dataclass
class _Input:
    """An input read into the unit cube: targets ``(M, 3)``, ``sdf`` (unit points -> values),
    the normalization to world, the input mesh (for metrics) or None."""

    kind: str
    targets: np.ndarray
    sdf: object
    norm: pointcloud.Normalization
    mesh: trimesh.Trimesh | None = None


def input_kind(path: str | Path) -> str:
    """``"mesh"``, ``"cloud"`` or ``"field"``: what :func:`voromesh` reads ``path`` as (a PLY is a
    mesh when its header declares faces). Raises ModelNotFound or InputError (its extension)."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFound(f"input not found: {path}; pass {ACCEPTED}")
    ext = path.suffix.lower()
    if ext == ".safetensors":
        return "field"
    if ext in MESH_ONLY:
        return "mesh"
    if ext in CLOUD_ONLY:
        return "cloud"
    if ext == ".ply":
        return "mesh" if _ply_has_faces(path) else "cloud"
    shown = f"unsupported extension '{path.suffix}'" if path.suffix else "no extension"
    raise InputError(f"cannot read {path}: {shown}; pass {ACCEPTED}")


def _ply_has_faces(path: Path) -> bool:
    """Whether a PLY header declares a face element with at least one face."""
    with open(path, "rb") as f:
        head = f.read(4096).split(b"end_header")[0]
    for line in head.splitlines():
        words = line.split()
        if len(words) == 3 and words[:2] == [b"element", b"face"] and words[2].isdigit():
            return int(words[2]) > 0
    return False


def voromesh(config: VoroMeshConfig, progress: bool = True) -> VoroMeshResult:
    """Fit a VoroMesh to ``config.input`` and write its mesh, report and generators.

    Args:
        config: the :class:`VoroMeshConfig`.
        progress: show the stages with a rich progress display.

    Returns:
        :class:`VoroMeshResult`.

    Raises:
        ModelNotFound: the input is missing. InputError: an input that cannot be read, a bad
            setting, an output that cannot be written, or a shape with no inside at this number of
            generators. CheckpointError: a corrupt field checkpoint.
            BackendUnavailable: ``device="cuda"`` without CUDA.

    Example:
        >>> import pathlib, tempfile, trimesh
        >>> from fields3d.pipelines.voromesh import VoroMeshConfig, voromesh
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     tmp = pathlib.Path(tmp)
        ...     _ = trimesh.creation.icosphere(subdivisions=3).export(tmp / "ball.obj")
        ...     config = VoroMeshConfig(tmp / "ball.obj", tmp / "ball.ply", generators=800,
        ...                             steps=30, samples=5000, eval_points=5000, device="cpu")
        ...     result = voromesh(config, progress=False)
        ...     print(sorted(p.name for p in tmp.iterdir()))
        ['ball.json', 'ball.obj', 'ball.ply', 'ball.voromesh.safetensors']
        >>> result.report["mesh"]["watertight"], result.report["metrics"]["chamfer_l1"] < 0.01
        (True, True)
    """
    if not isinstance(config, VoroMeshConfig):
        raise InputError(f"config must be a VoroMeshConfig, got {type(config).__name__}")
    kind = input_kind(config.input)
    check_output(config.output)
    device = resolve_device(config.device)
    config = dataclasses.replace(
        config, input=str(config.input), output=str(config.output), device=device.type
    )
    timings: dict[str, float] = {}
    with Stages(progress) as stages:
        source = _read(kind, config, device, stages, timings)
        fitted, resolution, losses = _fit(source, config, stages, timings)
        verts, faces, occupancy = _extract(source, fitted, config.input, stages, timings)
        world, generators = source.norm.to_world(verts), source.norm.to_world(fitted)
        report = _report(config, source, fitted, occupancy, resolution, losses, faces, world)
        if source.mesh is not None:
            with stages.stage("metrics"), timed(timings, "metrics_s"):
                report["metrics"] = mesh_metrics(
                    (world, faces), source.mesh, n_points=config.eval_points, seed=config.seed
                )
    report["timings"] = {**timings, "total_s": sum(timings.values())}
    out = Path(config.output)
    paths = {"mesh": mesh_io.save_mesh(world, faces, out)}
    paths["generators"] = save_checkpoint(
        out.with_suffix(".voromesh.safetensors"),
        {"generators": torch.from_numpy(generators), "occupancy": torch.from_numpy(occupancy)},
        {"kind": "voromesh", "input": config.input},
    )
    paths["report"] = write_json(out.with_suffix(".json"), report)
    return VoroMeshResult(world, faces, generators, occupancy, report, paths)


def _read(kind: str, config: VoroMeshConfig, device, stages, timings) -> _Input:
    with timed(timings, "read_s"):
        if kind == "mesh":
            with stages.stage("read mesh"):
                return _read_mesh(config)
        if kind == "field":
            with stages.stage("read field"):
                return _read_field(config, device)
        return _read_cloud(config, device, stages)


def _read_mesh(config: VoroMeshConfig) -> _Input:
    mesh = mesh_io.load_mesh(config.input)
    norm = pointcloud.Normalization.fit(mesh.vertices)
    unit = trimesh.Trimesh(norm.to_unit(mesh.vertices), mesh.faces, process=False)
    targets = pointcloud.sample_mesh(unit, config.samples, seed=config.seed).points
    return _Input("mesh", targets, MeshSDF(unit.vertices, unit.faces), norm, mesh)


def _read_field(config: VoroMeshConfig, device) -> _Input:
    from .recon.checkpoint import load_field
    from .recon.fit import extract

    field, norm, _ = load_field(config.input, device)
    field.eval()
    verts, faces = extract(field, config.field_resolution, device)
    if len(faces) == 0:
        raise InputError(
            f"the field in {config.input} has no surface at {config.field_resolution}^3 points "
            "(its values keep one sign); nothing was written"
        )
    surface = trimesh.Trimesh(verts, faces, process=False)
    targets = pointcloud.sample_mesh(surface, config.samples, seed=config.seed).points
    return _Input("field", targets, _field_sdf(field, device), norm)


def _read_cloud(config: VoroMeshConfig, device, stages) -> _Input:
    from .recon import ReconConfig
    from .recon.fit import fit_field

    with stages.stage("read cloud"):
        cloud = pointcloud.load_point_cloud(config.input, seed=config.seed)
        norm = pointcloud.Normalization.fit(cloud.points)
        pointcloud.check_not_a_line(cloud.points, cloud.source)
        targets = np.unique(norm.to_unit(cloud.points), axis=0)
    recon = ReconConfig(
        config.input,
        resolution=config.field_resolution,
        steps=config.field_steps,
        device=device.type,
        seed=config.seed,
    )
    field, _ = fit_field("gridpull", targets.astype(np.float32), recon, device, stages)
    field.eval()
    return _Input("cloud", targets, _field_sdf(field, device), norm)


def _field_sdf(field, device):
    """Unit points ``(M, 3)`` numpy -> ``(M,)`` float64 values of ``field``, in chunks, no gradient."""

    @torch.no_grad()
    def sdf(points: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.asarray(points, dtype=np.float32)).to(device)
        parts = [field(x[s : s + 2**16]).reshape(-1) for s in range(0, len(x), 2**16)]
        return torch.cat(parts).double().cpu().numpy()

    return sdf


def _fit(source: _Input, config: VoroMeshConfig, stages, timings):
    with timed(timings, "fit_s"):
        resolution = resolution_for(source.targets, config.generators)
        initial = grid_generators(source.targets, resolution)
        lr = LR_PER_SPACING * 2.0 / (resolution - 1)
        with (
            stages.stage(f"fit {len(initial)} generators", total=config.steps) as update,
            torch_threads(
                1
            ),  # small ops: one thread is faster on a busy machine (see torch_threads)
        ):
            fitted, losses = fit_generators(
                initial,
                source.targets,
                steps=config.steps,
                lr=lr,
                batch_fraction=config.batch_fraction,
                seed=config.seed,
                update=lambda step, loss: update(step, f"loss {loss:.2e}"),
            )
    return fitted, resolution, losses


def _extract(source: _Input, fitted: np.ndarray, name: str, stages, timings):
    with stages.stage("extract"), timed(timings, "extract_s"):
        diagram = VoronoiDiagram(fitted)
        occupancy = source.sdf(diagram.centroids()) < 0
        if occupancy.all() or not occupancy.any():
            where = "inside" if occupancy.all() else "outside"
            raise InputError(
                f"the {len(fitted)} generators' cells all lie {where} the shape of {name}, so "
                "there is no surface; use more generators"
            )
        verts, faces = diagram.surface(occupancy)
    return verts, faces, occupancy


def _report(config, source, fitted, occupancy, resolution, losses, faces, world) -> dict:
    return {
        "config": dataclasses.asdict(config),
        "input": {"kind": source.kind, "targets": len(source.targets)},
        "generators": {
            "count": len(fitted),
            "inside": int(occupancy.sum()),
            "grid_resolution": resolution,
        },
        "fit": {
            "steps": len(losses),
            "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None,
        },
        "mesh": check_surface(world, faces),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fields3d": __version__,
    }
