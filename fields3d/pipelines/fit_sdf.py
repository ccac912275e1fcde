"""Fit a neural signed distance field to a mesh with any 3D encoding: ``fit_sdf``.

1. **Normalise**: the mesh is translated and scaled uniformly so that its bounding box is centred
   in the unit cube and its longest side spans ``[margin, 1 - margin]``. Distances below are in
   these unit-cube units.
2. **Ground truth, once**: ``n_near`` points on the surface (uniform by area) offset by Gaussian
   noise, an equal share with each standard deviation in ``near_sigmas``, and ``n_uniform``
   uniform points of the cube; all clipped into ``[0, 1]^3``, their signed distances computed by
   :class:`~fields3d.geometry.sdf.MeshSDF` (negative inside; the sign assumes a closed mesh).
3. **Fit**: an :class:`~fields3d.fields.EncodedField` (the encoding, then a ReLU MLP with one
   linear output) takes ``steps`` Adam steps on random batches of those samples, minimising the
   L1 error of the signed distance, plus ``eikonal_weight * (|grad f| - 1)^2`` when that weight is
   positive (only for encodings with double backward, such as the hash grid). The learning rate
   is multiplied by ``lr_decay`` at the ``lr_decay_at`` fractions of the steps.
4. **Mesh and judge**: the zero level set is meshed by marching cubes on ``mc_resolution``^3
   points spanning the cube (:func:`~fields3d.geometry.mesh_field`, narrow band) and mapped back
   to the mesh's own coordinates. Reported: the volumetric IoU of ``f < 0`` against the ground
   truth's inside on ``iou_points`` uniform points of the mesh's bounding box, and Chamfer-L1,
   normal consistency and F-scores of the mesh against the input (:func:`~fields3d.geometry.mesh_metrics`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh

from .. import __version__
from .._checks import MAX_BATCH, MAX_GRID, MAX_POINTS, check_int, check_seed, is_number
from .._io import check_output
from ..errors import InputError, check_loss
from ..fields import EncodedField, has_double_backward
from ..geometry import load_mesh, mesh_field, mesh_metrics, sample_mesh, save_mesh
from ..geometry.mesh_io import rescaled
from ..geometry.pointcloud import Normalization, principal_spreads
from ..geometry.sdf import MeshSDF
from ._common import (
    DEVICES,
    as_tuple,
    check_path,
    device_name,
    resolve_device,
    torch_threads,
    write_json,
)
from ._encoding import resolve
from ._progress import Stages

# A hash grid whose finest level has about 512 vertices per axis (16 * 1.37^11), 1.3M parameters.
# Sized so that a CPU run of the default steps converges in seconds (figures: benchmarks/RESULTS.md,
# "Figures moved out of code comments").
DEFAULT_ENCODING = {
    "type": "hash_grid",
    "n_levels": 12,
    "n_features_per_level": 2,
    "log2_hashmap_size": 16,
    "base_resolution": 16,
    "per_level_scale": 1.37,
}
LIPSCHITZ = (
    2.0  # the narrow band's bound on |grad f|: a fitted SDF is near 1, with margin for its errors
)


@dataclass(frozen=True)
class FitSdfConfig:
    """Settings of :func:`fit_sdf` (see the module docstring); validated on construction (raises InputError).

    ``encoding``: an encoding config dict (``n_input_dims`` may be left out: it is filled in as 3),
    or None for :data:`DEFAULT_ENCODING`. ``n_hidden``, ``n_hidden_layers``: the MLP's.
    ``eval_points``: surface samples per mesh for the Chamfer distance, normal consistency and F-score.

    Example:
        >>> from fields3d.pipelines.fit_sdf import FitSdfConfig
        >>> config = FitSdfConfig("spot.obj", encoding={"type": "triplane", "resolution": 64})
        >>> config.encoding["resolution"], config.encoding["n_features"]  # completed, checked
        ([64], 16)
        >>> config.steps, config.mc_resolution, config.eval_points
        (800, 256, 100000)
        >>> FitSdfConfig("spot.obj", n_near=0, n_uniform=0)
        Traceback (most recent call last):
        ...
        fields3d.errors.InputError: n_near and n_uniform are both 0; the fit needs training samples
    """

    mesh: str | Path
    out_dir: str | Path = "out/fit-sdf"
    encoding: dict | None = None
    steps: int = 800
    batch_size: int = 2**13
    lr: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-15
    lr_decay: float = 0.33
    lr_decay_at: tuple[float, ...] = (0.5, 0.75, 0.9)
    eikonal_weight: float = 0.0
    n_hidden: int = 64
    n_hidden_layers: int = 2
    margin: float = 0.1
    n_near: int = 2**17
    near_sigmas: tuple[float, ...] = (0.01, 0.002)
    n_uniform: int = 2**16
    mc_resolution: int = 256
    iou_points: int = 2**17
    eval_points: int = 100_000
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_path("mesh", self.mesh, "a mesh file")
        check_path("out_dir", self.out_dir, "the output folder")
        for name, minimum in (("steps", 1), ("n_hidden", 1), ("n_hidden_layers", 0)):
            check_int(name, getattr(self, name), minimum)
        for name, minimum in (
            ("n_near", 0),
            ("n_uniform", 0),
            ("iou_points", 1),
            ("eval_points", 1),
        ):
            check_int(name, getattr(self, name), minimum, MAX_POINTS)  # past it: terabyte arrays
        check_int("mc_resolution", self.mc_resolution, 2, MAX_GRID)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        check_seed(self.seed)
        if self.n_near + self.n_uniform == 0:
            raise InputError("n_near and n_uniform are both 0; the fit needs training samples")
        _check_number("lr", self.lr, is_number(self.lr) and self.lr > 0, "a number > 0")
        _check_number(
            "lr_decay",
            self.lr_decay,
            is_number(self.lr_decay) and 0 < self.lr_decay <= 1,
            "a number in (0, 1]",
        )
        _check_number(
            "eps",
            self.eps,
            is_number(self.eps) and 0 <= self.eps < math.inf,
            "a finite number >= 0",
        )
        _check_number(
            "eikonal_weight",
            self.eikonal_weight,
            is_number(self.eikonal_weight) and 0 <= self.eikonal_weight < math.inf,
            "a finite number >= 0",
        )
        _check_number(
            "margin",
            self.margin,
            is_number(self.margin) and 0 <= self.margin < 0.5,
            "a number in [0, 0.5)",
        )
        betas, decay_at, sigmas = (
            as_tuple(v) for v in (self.betas, self.lr_decay_at, self.near_sigmas)
        )
        if betas is None or len(betas) != 2 or not all(is_number(b) and 0 <= b < 1 for b in betas):
            raise InputError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if decay_at is None or not all(is_number(f) and 0 < f < 1 for f in decay_at):
            raise InputError(
                f"lr_decay_at must be fractions of the steps in (0, 1), got {self.lr_decay_at!r}"
            )
        if not sigmas or not all(is_number(s) and 0 < s < math.inf for s in sigmas):
            raise InputError(
                f"near_sigmas must be one or more finite numbers > 0, got {self.near_sigmas!r}"
            )
        if self.device not in DEVICES:
            raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "lr_decay_at", decay_at)
        object.__setattr__(self, "near_sigmas", sigmas)
        encoding = dict(DEFAULT_ENCODING) if self.encoding is None else self.encoding
        object.__setattr__(self, "encoding", resolve(encoding, 3, "fit-sdf")[0])


@dataclass
class FitSdfResult:
    """What :func:`fit_sdf` returns. ``metrics`` is what ``metrics.json`` holds; ``paths`` maps
    ``mesh``, ``metrics`` and ``config`` to the files written. Surface metrics are None when the
    field's zero level set is empty (no mesh to compare)."""

    iou: float
    chamfer_l1: float | None
    normal_consistency: float | None
    f_score: float | None
    n_params: int
    train_seconds: float
    steps: int
    device: str
    metrics: dict
    paths: dict[str, Path]
    field: EncodedField = dataclasses.field(repr=False)


def _check_number(name: str, value, ok: bool, want: str) -> None:
    if not ok:
        raise InputError(f"{name} must be {want}, got {value!r}")


#: A mesh thinner than this fraction of its size (the RMS spread of its vertices along their thinnest
#: principal axis over that along the widest) is flat: it bounds no inside, and no grid would resolve one.
FLAT = 1e-6


def check_solid(mesh: trimesh.Trimesh, path) -> None:
    """Raise InputError unless ``mesh`` (read from ``path``) has surface area and is not flat: a flat
    mesh (a single triangle, a sheet) has no inside, so its signed distance and IoU mean nothing."""
    verts = rescaled(
        mesh.vertices
    )  # times a power of two: exact, and no overflow for a mesh near 1e300
    if not _has_area(verts, mesh.faces):
        raise InputError(
            f"mesh {path} has zero surface area (all {len(mesh.faces)} triangles are degenerate); "
            "fit-sdf needs a closed mesh around a solid"
        )
    spread = principal_spreads(verts)
    if spread[0] <= FLAT * spread[2]:
        raise InputError(
            f"mesh {path} is flat (its vertices lie in one plane), so it has no inside for a signed "
            "distance; fit-sdf needs a closed mesh around a solid"
        )


def _has_area(verts: np.ndarray, faces: np.ndarray, chunk: int = 2**18) -> bool:
    """Whether any triangle has area, a chunk of faces at a time (a whole large mesh's corners take gigabytes)."""
    for start in range(0, len(faces), chunk):
        a, b, c = verts[faces[start : start + chunk].T]
        if np.cross(b - a, c - a).any():
            return True
    return False


def normalization(mesh: trimesh.Trimesh, margin: float) -> Normalization:
    """World -> ``[-1, 1]^3``, the mesh's bounding box reaching ``1 - 2 margin`` (unit cube: ``(u + 1) / 2``)."""
    return Normalization.fit(mesh.vertices, extent=1.0 - 2.0 * margin)


def training_samples(
    unit_mesh: trimesh.Trimesh, gt: MeshSDF, config: FitSdfConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(n_near + n_uniform, 3)`` float32 in ``[0, 1]^3`` and their signed distances ``(N,)`` float32.

    ``unit_mesh`` and ``gt`` are in unit-cube coordinates. Deterministic for ``config.seed``.
    """
    rng = np.random.default_rng([config.seed, 2])
    parts = []
    if config.n_near:
        surface = sample_mesh(unit_mesh, config.n_near, seed=config.seed).points
        share = np.array_split(np.arange(config.n_near), len(config.near_sigmas))
        for sigma, rows in zip(config.near_sigmas, share):
            parts.append(surface[rows] + rng.normal(scale=sigma, size=(len(rows), 3)))
    parts.append(rng.random((config.n_uniform, 3)))
    points = np.clip(np.concatenate(parts), 0.0, 1.0)
    return points.astype(np.float32), gt(points).astype(np.float32)


def _build_field(config: FitSdfConfig, device: torch.device) -> EncodedField:
    """The field, initialised from ``config.seed`` without touching the global RNG."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(config.seed)
        field = EncodedField(
            config.encoding, 1, config.n_hidden, config.n_hidden_layers, device=device
        )
    if config.eikonal_weight > 0 and not has_double_backward(field.encoding):
        raise InputError(
            f"eikonal_weight={config.eikonal_weight!r} needs an encoding with double backward, and the "
            f"{config.encoding['type']} encoding has none; set eikonal_weight to 0"
        )
    return field


def _loss(
    field: EncodedField, x: torch.Tensor, y: torch.Tensor, eikonal_weight: float
) -> torch.Tensor:
    """L1 error of ``f(x)`` against ``y`` ``(B,)``, plus the weighted eikonal term ``(|grad f| - 1)^2``."""
    if eikonal_weight == 0:
        return (field(x).squeeze(1) - y).abs().mean()
    x = x.detach().requires_grad_(True)
    f = field(x).squeeze(1)
    (g,) = torch.autograd.grad(f.sum(), x, create_graph=True)
    return (f - y).abs().mean() + eikonal_weight * (g.norm(dim=1) - 1.0).square().mean()


def _train(
    field: EncodedField, x: torch.Tensor, y: torch.Tensor, config: FitSdfConfig, update
) -> float:
    """``config.steps`` Adam steps on random batches of the samples ``x`` ``(N, 3)``, ``y`` ``(N,)``; the last loss."""
    opt = torch.optim.Adam(field.parameters(), lr=config.lr, betas=config.betas, eps=config.eps)
    milestones = sorted({max(1, round(f * config.steps)) for f in config.lr_decay_at})
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=config.lr_decay)
    generator = torch.Generator().manual_seed(config.seed)
    report_every = max(1, config.steps // 100)
    for step in range(1, config.steps + 1):
        pick = torch.randint(0, x.shape[0], (config.batch_size,), generator=generator).to(x.device)
        loss = _loss(field, x[pick], y[pick], config.eikonal_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step % report_every == 0 or step == config.steps:
            update(step, f"loss {loss.item():.2e}")
    return loss.item()


@torch.no_grad()
def _values(field: EncodedField, points: torch.Tensor, chunk: int = 2**18) -> torch.Tensor:
    """``f`` at ``(N, 3)`` points in chunks -> ``(N,)``."""
    return torch.cat(
        [field(points[s : s + chunk]).squeeze(1) for s in range(0, points.shape[0], chunk)]
    )


def volume_iou(
    field: EncodedField, gt: MeshSDF, lo: np.ndarray, hi: np.ndarray, n: int, seed: int
) -> float:
    """IoU of ``field < 0`` and ``gt < 0`` on ``n`` uniform random points of the box ``[lo, hi]`` (unit cube)."""
    points = np.random.default_rng([seed, 3]).uniform(lo, hi, size=(n, 3))
    inside_gt = gt(points) < 0
    x = torch.from_numpy(points.astype(np.float32)).to(field.device)
    inside = (_values(field, x) < 0).cpu().numpy()
    union = int((inside | inside_gt).sum())
    return float((inside & inside_gt).sum()) / union if union else 0.0


def extract_mesh(
    field: EncodedField, resolution: int, device: torch.device, update
) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of ``f = 0`` on ``resolution``^3 points spanning the unit cube.

    Returns ``(V, 3)`` float64 vertices in unit-cube coordinates and ``(F, 3)`` int64 faces.
    """
    verts, faces = mesh_field(
        lambda p: field(p).squeeze(1),
        ((0.0,) * 3, (1.0,) * 3),
        resolution,
        0.0,
        device=device,
        lipschitz=LIPSCHITZ,
        progress=lambda fraction: update(round(100 * fraction)),
    )
    return verts.cpu().numpy().astype(np.float64), faces.cpu().numpy()


def _surface_metrics(
    verts: np.ndarray, faces: np.ndarray, mesh: trimesh.Trimesh, config: FitSdfConfig
) -> dict:
    if len(faces) == 0:
        return {"chamfer_l1": None, "normal_consistency": None, "f_score": None}
    m = mesh_metrics((verts, faces), mesh, n_points=config.eval_points, seed=config.seed)
    return {
        "chamfer_l1": m["chamfer_l1"],
        "normal_consistency": m["normal_consistency"],
        "f_score": m["f_score@1%"],
        "f_score@0.5%": m["f_score@0.5%"],
        "mesh_metrics": m,
    }


def fit_sdf(config: FitSdfConfig, progress: bool = True) -> FitSdfResult:
    """Fit an SDF to ``config.mesh``, mesh it and write ``mesh.ply``, ``metrics.json`` and ``config.json``.

    ``mesh.ply`` is in the input mesh's coordinates (empty when ``f`` never changes sign).
    ``metrics.json`` holds ``iou``, ``chamfer_l1``, ``normal_consistency``, ``f_score`` (at 1% of
    the input's bounding-box diagonal; ``f_score@0.5%`` beside it), ``n_params`` (encoding and
    MLP), ``encoding_n_params``, ``encoding`` (its complete config), ``train_seconds``, ``steps``,
    timings of every stage and the versions. ``config.json`` is the resolved config. A rich
    progress display shows the stages unless ``progress`` is False.

    Args:
        config: the :class:`FitSdfConfig`.
        progress: show the stages with a rich progress display.

    Returns:
        :class:`FitSdfResult`: IoU, Chamfer-L1, normal consistency and F-score (the surface ones
        None without a surface), parameter count, training seconds, steps, device, the metrics,
        the paths written and the field (``(N, 3)`` float32 points in the mesh's normalised
        ``[0, 1]^3`` box to ``(N, 1)`` signed distances).

    Raises:
        ModelNotFound: the mesh file does not exist.
        InputError: the file cannot be read as a mesh, the mesh is flat or has no area (no inside: see
            :func:`check_solid`), or a setting is invalid (also an eikonal weight for an encoding
            without double backward).
        BackendUnavailable: ``device="cuda"`` on a machine or build without CUDA.

    Example:
        >>> import pathlib, tempfile
        >>> import trimesh
        >>> from fields3d.pipelines.fit_sdf import FitSdfConfig, fit_sdf
        >>> grid = {"type": "hash_grid", "n_levels": 4, "log2_hashmap_size": 10,
        ...         "base_resolution": 4, "per_level_scale": 2.0}  # a small hash grid
        >>> small = dict(encoding=grid, steps=150, batch_size=1024, n_near=4096, n_uniform=2048,
        ...              mc_resolution=48, iou_points=4096, eval_points=2000, device="cpu")
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     tmp = pathlib.Path(tmp)
        ...     _ = trimesh.creation.icosphere(subdivisions=3).export(tmp / "ball.obj")
        ...     config = FitSdfConfig(tmp / "ball.obj", tmp / "out", **small)
        ...     result = fit_sdf(config, progress=False)
        ...     print(sorted(p.name for p in (tmp / "out").iterdir()))
        ['config.json', 'mesh.ply', 'metrics.json']
        >>> result.steps, result.iou > 0.98, result.normal_consistency > 0.99
        (150, True, True)
        >>> 5000 < result.metrics["mesh"]["vertices"] < 8000  # marching cubes at 48^3
        True
    """
    if not isinstance(config, FitSdfConfig):
        raise InputError(f"config must be a FitSdfConfig, got {type(config).__name__}")
    mesh = load_mesh(config.mesh)
    check_solid(mesh, config.mesh)
    check_output(
        Path(config.out_dir) / "metrics.json"
    )  # an output that cannot be written fails now, not after
    device = resolve_device(config.device)
    config = dataclasses.replace(
        config, mesh=str(config.mesh), out_dir=str(config.out_dir), device=device.type
    )
    norm = normalization(mesh, config.margin)
    unit = trimesh.Trimesh((norm.to_unit(mesh.vertices) + 1.0) / 2.0, mesh.faces, process=False)
    field = _build_field(config, device)
    timings: dict[str, float] = {}
    with Stages(progress) as stages:
        verts, faces, iou, final_loss = _run(field, unit, config, device, stages, timings)
        start = time.perf_counter()
        with stages.stage("metrics") as update:
            world = norm.to_world(verts * 2.0 - 1.0)
            surface = _surface_metrics(world, faces, mesh, config)
            update(1)
        timings["metrics_s"] = time.perf_counter() - start
    metrics = {
        "iou": iou,
        **surface,
        "n_params": field.n_params,
        "encoding_n_params": field.encoding.n_params,
        "encoding": config.encoding,
        "train_seconds": timings["train_s"],
        "steps": config.steps,
        "final_loss": final_loss,
        "mesh": {"vertices": len(verts), "faces": len(faces)},
        "timings": timings,
        "device": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fields3d": __version__,
    }
    out = Path(config.out_dir)
    paths = {
        "mesh": save_mesh(world, faces, out / "mesh.ply"),
        "metrics": write_json(out / "metrics.json", metrics),
        "config": write_json(out / "config.json", asdict(config)),
    }
    return FitSdfResult(
        iou,
        surface["chamfer_l1"],
        surface["normal_consistency"],
        surface["f_score"],
        field.n_params,
        timings["train_s"],
        config.steps,
        device.type,
        metrics,
        paths,
        field,
    )


def _run(
    field, unit, config, device, stages, timings
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Ground truth, training, marching cubes and IoU, filling ``timings``.

    Returns the mesh (unit-cube vertices, faces), the IoU and the last training loss.
    """
    start = time.perf_counter()
    with stages.stage("ground truth") as update:
        gt = MeshSDF(unit.vertices, unit.faces)
        x, y = (torch.from_numpy(a).to(device) for a in training_samples(unit, gt, config))
        update(1)
    timings["ground_truth_s"] = time.perf_counter() - start
    start = time.perf_counter()
    with (
        stages.stage("fit", total=config.steps) as update,
        torch_threads(1 if device.type == "cpu" else None),
    ):
        final_loss = _train(field, x, y, config, update)
        _sync(device)
    check_loss(final_loss, config.steps, config.lr)
    timings["train_s"] = time.perf_counter() - start
    start = time.perf_counter()
    field.eval()
    with stages.stage("marching cubes", total=100) as update:
        verts, faces = extract_mesh(field, config.mc_resolution, device, update)
    timings["mesh_s"] = time.perf_counter() - start
    start = time.perf_counter()
    with stages.stage("iou") as update:
        # the field's whole cube, not the mesh's box: a field inside everywhere fills a box-shaped mesh's box
        iou = volume_iou(field, gt, np.zeros(3), np.ones(3), config.iou_points, config.seed)
        update(1)
    timings["iou_s"] = time.perf_counter() - start
    return verts, faces, iou, final_loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
