"""``train_nerf``: a NeRF from posed pictures, with progress, checkpoints, resume and evaluation."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ... import __version__
from ..._io import check_output
from ...errors import InputError
from ...render.datasets import load_scene
from .._common import resolve_device, run_fraction, write_json
from ..hooks import TrainingHook
from .checkpoint import CHECKPOINT, load_state, save_state
from .config import NerfConfig
from .fewshot import select_views
from .learned import occupancy_fraction
from .model import snapshot
from .outputs import check_scoreable, check_viewpoints, evaluate, write_mesh, write_turntable
from .train import TrainState, build_state, should_stop, sync, timed, train_step


@dataclass
class NerfResult:
    """What :func:`train_nerf` returns: the test views' mean PSNR (dB) and SSIM, the seconds and
    steps trained (a resumed run counts its earlier ones), the output folder, the trained state
    (field, occupancy grid, optimiser) and ``metrics.json``'s ``mesh`` record (None without one)."""

    psnr: float
    ssim: float
    train_seconds: float
    steps: int
    out_dir: Path
    state: TrainState
    mesh: dict | None = (
        None  # metrics.json's "mesh": vertices, faces, level (and a note when there is no surface)
    )


def _progress(enabled: bool, config: NerfConfig) -> Progress:
    total = "steps" if config.steps is not None else "seconds"
    return Progress(
        TextColumn("[bold]nerf"),
        BarColumn(),
        TextColumn(f"{{task.percentage:>3.0f}}% of {total}"),
        TextColumn(
            "step {task.fields[step]}  psnr {task.fields[psnr]:.2f} dB  rays {task.fields[rays]}"
        ),
        TimeElapsedColumn(),
        transient=True,
        disable=not enabled,
    )


def _train(
    config: NerfConfig,
    state: TrainState,
    scene,
    out_dir: Path,
    progress: bool,
    hook: TrainingHook | None = None,
) -> None:
    device = scene.images.device
    generator = torch.Generator(device=device).manual_seed(config.seed + state.step)
    last_save = state.seconds
    with _progress(progress, config) as bar:
        task = bar.add_task("train", total=1.0, step=state.step, psnr=0.0, rays=state.n_rays)
        while not should_stop(config, state):
            start = timed(device)
            train_psnr = train_step(config, state, scene, generator)
            state.seconds += timed(device) - start
            if state.step % 50 == 0:
                state.history.append((state.step, round(state.seconds, 2), round(train_psnr, 2)))
            bar.update(
                task,
                completed=min(run_fraction(config, state), 1.0),
                step=state.step,
                psnr=train_psnr,
                rays=state.n_rays,
            )
            if state.seconds - last_save >= config.checkpoint_every:
                save_state(out_dir / CHECKPOINT, config, state, scene)
                last_save = state.seconds
            if hook is not None:  # outside the timed part: a paused run waits here
                hook.step(state.step, {"psnr": train_psnr}, lambda: snapshot(state, scene))
                if hook.should_stop():
                    break
    save_state(out_dir / CHECKPOINT, config, state, scene)


def train_nerf(
    config: NerfConfig, progress: bool = True, hook: TrainingHook | None = None
) -> NerfResult:
    """Train on ``config.data``'s train split, evaluate on its test split, write everything to ``config.output``.

    Writes ``metrics.json`` (``psnr``, ``ssim``, ``train_seconds``, ...), ``test/r_<i>.png`` in the
    order of the test split (composited on the dataset's background), ``turntable.gif``,
    ``config.json``, ``mesh.ply`` when ``mesh_resolution`` > 0 and ``checkpoint.safetensors`` (every ``checkpoint_every`` seconds and at the
    end; ``resume=True`` continues from it). ``hook`` (a
    :class:`~fields3d.pipelines.hooks.TrainingHook`) is told of every step and may pause or stop
    the run; a stopped run is saved and evaluated as one that ran to its end.

    Args:
        config: the :class:`NerfConfig`; settings left None are filled in for the device.
        progress: show a progress bar (step, training PSNR, rays per step).

    Returns:
        :class:`NerfResult`.

    Raises:
        ModelNotFound: the scene folder, a picture or (with ``resume``) the checkpoint is missing.
        InputError: a bad setting or scene file, or test pictures too small for SSIM.
            CheckpointError: the checkpoint is corrupt, or was trained with other settings or on
            another scene. BackendUnavailable: ``device="cuda"`` without CUDA.

    Example:
        >>> import pathlib, tempfile
        >>> import fields3d
        >>> from fields3d.pipelines.nerf import NerfConfig
        >>> spot = pathlib.Path(fields3d.__file__).parents[1] / "assets" / "scenes" / "spot"
        >>> tiny = dict(  # 20 x 20 pictures, a small field, long steps: seconds on one core
        ...     downscale=10, samples_per_step=4096, n_levels=4, log2_hashmap_size=12,
        ...     max_resolution=64, n_hidden=16, grid_resolution=16, step_size=0.05,
        ...     time_budget=None, turntable_frames=0, device="cpu",
        ... )
        >>> import json
        >>> from fields3d.pipelines.nerf import train_nerf
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     config = NerfConfig(data=str(spot), output=tmp, steps=10, **tiny)
        ...     result = train_nerf(config, progress=False)
        ...     print(sorted(p.name for p in pathlib.Path(tmp).iterdir()))
        ...     metrics = json.loads((pathlib.Path(tmp) / "metrics.json").read_text())
        ['checkpoint.safetensors', 'config.json', 'metrics.json', 'test']
        >>> result.steps, metrics["image_size"], metrics["train_views"], metrics["test_views"]
        (10, [20, 20], 100, 20)
        >>> 5 < result.psnr < 60, 0 < result.ssim < 1, len(metrics["per_view_psnr"])
        (True, True, 20)
    """
    if not isinstance(config, NerfConfig):
        raise InputError(f"config must be a NerfConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    config = config.resolved(device.type)
    train = select_views(
        load_scene(config.data, "train", config.downscale), config.train_views, config.data
    )
    test = load_scene(config.data, "test", config.downscale)
    check_viewpoints(train, config.data)
    check_scoreable(test, config.data, config.downscale)
    train = dataclasses.replace(
        train,
        images=train.images.to(device),
        cameras=train.cameras.to(device),
        background=train.background.to(device),
    )
    test = dataclasses.replace(
        test,
        cameras=test.cameras.to(device),
        images=test.images.to(device),
        background=test.background.to(device),
    )
    out_dir = Path(config.output)
    check_output(
        out_dir / CHECKPOINT
    )  # an output that cannot be written fails now, not at the first checkpoint
    state = build_state(config, train, device)
    if config.resume:
        load_state(out_dir / CHECKPOINT, state)
    _train(config, state, train, out_dir, progress, hook)
    start = time.perf_counter()
    scores = evaluate(state, test, out_dir, config.eval_chunk)
    if config.turntable_frames:
        write_turntable(
            out_dir / "turntable.gif",
            state,
            test.cameras,
            test.background,
            config.turntable_frames,
            config.eval_chunk,
        )
    mesh = None
    if config.mesh_resolution:
        mesh = _mesh(out_dir, state, config)
    sync(device)
    metrics = {
        "psnr": scores["psnr"],
        "ssim": scores["ssim"],
        "train_seconds": state.seconds,
        "steps": state.step,
        "eval_seconds": time.perf_counter() - start,
        "per_view_psnr": scores["per_view_psnr"],
        "scene": train.name,
        "train_views": len(train),
        "field_modulation": config.field_modulation,
        "mlp": config.mlp,
        "test_views": len(test),
        "image_size": [train.cameras.height, train.cameras.width],
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fields3d": __version__,
        "occupancy": occupancy_fraction(state),
        "occupancy_mode": config.occupancy,
        "history": state.history,
        "mesh": mesh,
    }
    write_json(out_dir / "metrics.json", metrics)
    write_json(out_dir / "config.json", config.to_dict())
    return NerfResult(
        scores["psnr"], scores["ssim"], state.seconds, state.step, out_dir, state, mesh
    )


def _mesh(out_dir: Path, state: TrainState, config: NerfConfig) -> dict:
    """Write mesh.ply; its record for metrics.json (a note instead of the file when there is no surface)."""
    verts, faces = write_mesh(
        out_dir / "mesh.ply", state, config.mesh_resolution, config.mesh_level
    )
    record = {"vertices": verts, "faces": faces, "level": config.mesh_level}
    if not faces:
        (out_dir / "mesh.ply").unlink(
            missing_ok=True
        )  # a resumed run's older mesh would pass for this one's
        record["note"] = (
            f"no surface: the density never reaches mesh_level {config.mesh_level:g} on the "
            f"{config.mesh_resolution}^3 grid; lower mesh_level or train longer"
        )
    return record
