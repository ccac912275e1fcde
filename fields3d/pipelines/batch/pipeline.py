"""``run_batch``: many shapes reconstructed by :func:`fields3d.pipelines.recon.reconstruct`.

The driver expands INPUTS into shapes, skips those the manifest already holds with the same
settings and input file (unless ``force``), runs the rest in a local process pool or as Ray
tasks, appends each shape's record to ``OUTDIR/manifest.jsonl`` as it finishes, then writes the
summary. Each shape ``NAME`` is written to ``OUTDIR/NAME/mesh.<format>`` (with ``mesh.png``,
``mesh.json`` and, for the field methods, ``mesh.field.safetensors``: what ``fields3d recon``
writes).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InputError
from .executors import LocalPool, RayExecutor
from .inputs import Shape, collect_shapes
from .manifest import MANIFEST, Manifest, latest, read_manifest
from .summary import write_summary
from .worker import relative_outputs

FORMATS = (".ply", ".obj", ".off", ".stl", ".glb")


@dataclass(frozen=True)
class BatchConfig:
    """Settings of :func:`run_batch` (checked on construction; InputError names the bad one).

    ``inputs``: files, folders and globs of point clouds or meshes; ``outdir``: where the shapes,
    the manifest and the summary go; ``recon``: :class:`~fields3d.pipelines.recon.ReconConfig`
    fields applied to every shape (not ``input``, ``output`` or ``gt``; left out: its defaults);
    ``gt_dir``: a folder of reference meshes, paired with the inputs by file stem;
    ``mesh_format``: the meshes' extension; ``workers``: local processes (None: one per core,
    at most one per shape); ``threads``: torch and core threads per shape (None: the cores
    shared among the workers; with Ray, the CPUs each task asks for); ``force``: redo shapes
    the manifest holds; ``ray``: run each shape as a Ray task; ``ray_address``: None (a local
    Ray for this batch), ``"auto"`` or ``"HOST:PORT"``; ``gpus_per_task``: None gives 1 with
    ``device="cuda"``, else 0; ``retries``: Ray's retries of a task whose worker died.
    """

    inputs: tuple
    outdir: str | os.PathLike = "out/batch"
    recon: dict = field(default_factory=dict)
    gt_dir: str | os.PathLike | None = None
    mesh_format: str = ".ply"
    workers: int | None = None
    threads: int | None = None
    force: bool = False
    ray: bool = False
    ray_address: str | None = None
    gpus_per_task: float | None = None
    retries: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if self.mesh_format not in FORMATS:
            raise InputError(
                f"mesh_format must be one of {', '.join(FORMATS)}, got {self.mesh_format!r}"
            )
        if self.workers is not None:
            _check_count("workers", self.workers, 1)
        if self.threads is not None:
            _check_count("threads", self.threads, 1)
        _check_count("retries", self.retries, 0)
        gpus = self.gpus_per_task
        if gpus is not None and (
            isinstance(gpus, bool)
            or not isinstance(gpus, (int, float))
            or not 0 <= gpus < float("inf")
        ):
            raise InputError(f"gpus_per_task must be a number >= 0, got {self.gpus_per_task!r}")
        if self.ray_address is not None and not self.ray:
            raise InputError("ray_address needs ray=True (--ray-address needs --ray)")
        banned = {"input", "output", "gt"} & set(self.recon)
        if banned:
            raise InputError(
                f"recon settings must not hold {', '.join(sorted(banned))}: the batch sets them per shape"
            )


@dataclass
class BatchResult:
    """What :func:`run_batch` returns: the last record of every shape of the batch (in input
    order), how many ran now (``ran``) or were skipped as done (``skipped``), and the summary's
    paths (``manifest``, ``csv``, ``md``, ``contact_sheet``)."""

    records: list[dict]
    ran: int
    skipped: int
    paths: dict[str, Path]
    seconds: float

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r["status"] != "done"]


def resolve_settings(recon: dict) -> dict:
    """Every ReconConfig field but input/output/gt, defaults filled in (validated by ReconConfig)."""
    from ..recon import ReconConfig

    config = ReconConfig(input="shape.ply", output="mesh.ply", **recon)
    settings = dataclasses.asdict(config)
    for key in ("input", "output", "gt"):
        settings.pop(key)
    return settings


def plan(config: BatchConfig) -> tuple[list[Shape], dict]:
    """The batch's shapes and resolved recon settings, checked before anything runs."""
    settings = resolve_settings(config.recon)
    shapes = collect_shapes(config.inputs, config.gt_dir, exclude=config.outdir)
    return shapes, settings


def fingerprint(shape: Shape, settings: dict) -> dict:
    """What must match for a rerun to skip a shape: the settings, the reference, the input file."""
    st = os.stat(shape.input)
    return {
        "settings": settings,
        "gt": shape.gt,
        "input_size": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
    }


def is_settled(record: dict | None, fp: dict, outdir: Path) -> bool:
    """Whether a rerun may skip the shape: done with its mesh still there, or failed on its input
    (a rerun would fail the same way), with the same fingerprint."""
    if record is None or record.get("fingerprint") != fp:
        return False
    if record["status"] == "done":
        mesh = record.get("outputs", {}).get("mesh")
        return mesh is not None and (outdir / mesh).is_file()
    return record.get("error_kind") == "input"


def run_batch(config: BatchConfig, progress: bool = True, echo=None) -> BatchResult:
    """Reconstruct every shape of ``config`` (see the module docstring); returns the records.

    ``echo``: called with a line of text for each shape finished (None: nothing printed).
    Raises InputError / ModelNotFound for bad settings or inputs before anything runs, and
    BackendUnavailable for ``ray=True`` without Ray installed.

    The local pool starts its workers with multiprocessing's ``spawn``: a script that calls
    this must do so under ``if __name__ == "__main__":`` (the workers import the script).
    """
    start = time.perf_counter()
    outdir = Path(config.outdir)
    shapes, settings = plan(config)
    executor = _executor(config, settings, len(shapes))
    outdir.mkdir(parents=True, exist_ok=True)
    known = latest(read_manifest(outdir / MANIFEST))
    root = outdir.resolve()
    tasks, final, skipped = [], {}, 0
    for shape in shapes:
        fp = fingerprint(shape, settings)
        if not config.force and is_settled(known.get(shape.input), fp, outdir):
            final[shape.input] = known[shape.input]
            skipped += 1
            continue
        tasks.append(
            {
                "name": shape.name,
                "input": shape.input,
                "gt": shape.gt,
                # absolute: a Ray worker's working folder is not the driver's
                "output": str((root / shape.name / "mesh").with_suffix(config.mesh_format)),
                "settings": settings,
                "threads": executor.threads_per_task,
                "fingerprint": fp,
            }
        )
    from .progress import BatchProgress

    with Manifest(outdir / MANIFEST) as manifest, BatchProgress(len(tasks), progress) as bar:

        def on_done(record: dict) -> None:
            record = relative_outputs(record, outdir)
            manifest.append(record)
            final[record["input"]] = record
            bar.finish(record)
            if echo is not None:
                echo(_line(record))

        if tasks:
            executor.run(tasks, bar.start, on_done)
    records = [final[s.input] for s in shapes if s.input in final]
    seconds = time.perf_counter() - start
    paths = {"manifest": outdir / MANIFEST, **write_summary(records, outdir, seconds)}
    return BatchResult(records, len(tasks), skipped, paths, seconds)


def _executor(config: BatchConfig, settings: dict, n_shapes: int):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(1, cores or 1)
    if config.ray:
        from .executors import import_ray

        import_ray()  # the install hint before any work
        threads = config.threads or 1
        gpus = config.gpus_per_task
        if gpus is None:
            gpus = 1 if settings["device"] == "cuda" else 0
        local = (config.workers or cores) * threads if config.ray_address is None else None
        executor = RayExecutor(config.ray_address, threads, gpus, config.retries, local)
    else:
        workers = config.workers or (1 if settings["device"] == "cuda" else cores)
        workers = max(1, min(workers, n_shapes))
        threads = config.threads or max(1, cores // workers)
        executor = LocalPool(workers, threads)
    executor.threads_per_task = threads
    return executor


def _check_count(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")


def _line(record: dict) -> str:
    if record["status"] == "done":
        return f"done    {record['name']} ({record['seconds']:.1f} s, {record['mesh'].get('faces')} faces)"
    return f"failed  {record['name']}: {record['error']}"
