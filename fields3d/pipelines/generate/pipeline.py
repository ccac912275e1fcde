"""``generate``: text-to-3D by score distillation, with progress, checkpoints, resume and outputs."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ... import __version__
from ..._io import check_output
from ...errors import InputError
from ...guidance import create
from .._common import device_name, resolve_device, run_fraction, torch_threads, write_json
from ..hooks import TrainingHook
from .checkpoint import CHECKPOINT, load_state, save_state
from .config import GenerateConfig
from .model import GenerativeModel
from .outputs import eval_views, extract_mesh, target_metrics, write_colored_mesh, write_turntable
from .train import Scene, TrainState, build_state, resolve_background, sync, train_step


@dataclass
class GenerateResult:
    out_dir: Path
    steps: int
    train_seconds: float
    loss: float | None
    metrics: dict  # what metrics.json holds
    state: TrainState
    paths: dict  # name -> path written


def build_prior(config: GenerateConfig, device: torch.device):
    """The prior the config names (ModelNotFound, CheckpointError, InputError, BackendUnavailable
    pass through with their messages)."""
    settings = dict(config.guidance_options)
    settings.setdefault("device", device.type)
    settings.setdefault("seed", config.seed)
    if config.is_target:
        if config.prompt:
            settings.setdefault("prompt", config.prompt)
    else:
        settings["prompt"] = config.prompt
        if config.model is not None:
            settings.setdefault("model", str(config.model))
    if config.latent_field:
        settings.setdefault("latents", "direct")
    if config.is_target and isinstance(config.background, (tuple, list)):
        settings.setdefault("background", tuple(config.background))
    return create(str(config.guidance), **settings)


def _progress(enabled: bool, config: GenerateConfig) -> Progress:
    total = "steps" if config.steps is not None else "seconds"
    return Progress(
        TextColumn("[bold]generate"),
        BarColumn(),
        TextColumn(f"{{task.percentage:>3.0f}}% of {total}"),
        TextColumn("step {task.fields[step]}  loss {task.fields[loss]:.4g}"),
        TimeElapsedColumn(),
        transient=True,
        disable=not enabled,
    )


def snapshot(state: TrainState, scene: Scene, config: GenerateConfig) -> GenerativeModel:
    """A :class:`GenerativeModel` of the run as it stands: copies of ``state``'s field, grid and
    background (later steps do not touch them). Take it between steps (a
    :class:`~fields3d.pipelines.hooks.TrainingHook` is called there)."""
    background = state.background
    if isinstance(background, torch.nn.Module):
        background = copy.deepcopy(background).requires_grad_(False).eval()
    elif isinstance(background, torch.Tensor):
        background = background.detach().clone()
    return GenerativeModel(
        copy.deepcopy(state.field).requires_grad_(False).eval(),
        copy.deepcopy(state.grid),
        state.settings,
        background,
        state.step,
        sum(config.radius_range) / 2 * scene.radius,
        sum(config.fov_range) / 2,
        scene.up,
    )


def _train(config, state, prior, scene, out_dir: Path, progress, callback, hook) -> float | None:
    # the prior's timesteps anneal over the run: by steps, or with a time budget by the fraction
    # of the budget spent (as 1000ths), whichever stops the run
    total = config.steps if config.time_budget is None else 1000
    last_save, loss = state.seconds, None
    device = state.field.center.device
    with _progress(progress, config) as bar:
        task = bar.add_task("generate", total=1.0, step=state.step, loss=0.0)
        while run_fraction(config, state) < 1.0:
            sync(device)
            start = time.perf_counter()
            at = None
            if config.time_budget is not None:
                at = min(total, round(run_fraction(config, state) * total))
            loss = train_step(config, state, prior, total, at)
            sync(device)
            state.seconds += time.perf_counter() - start
            if state.step % 10 == 0:
                state.history.append([state.step, round(state.seconds, 3), loss])
            bar.update(
                task, completed=min(run_fraction(config, state), 1.0), step=state.step, loss=loss
            )
            if state.seconds - last_save >= config.checkpoint_every:
                save_state(out_dir / CHECKPOINT, config, state, prior)
                last_save = state.seconds
            if callback is not None:
                callback(state, loss)
            if hook is not None:  # outside the timed part: a paused run waits here
                hook.step(state.step, {"loss": loss}, lambda: snapshot(state, scene, config))
                if hook.should_stop():
                    break
    save_state(out_dir / CHECKPOINT, config, state, prior)
    return loss


def generate(
    config: GenerateConfig,
    progress: bool = True,
    callback: Callable[[TrainState, float], None] | None = None,
    hook: TrainingHook | None = None,
) -> GenerateResult:
    """Generate ``config.prompt`` (or the target's object) and write everything to ``config.output``.

    Writes ``checkpoint.safetensors`` (every ``checkpoint_every`` seconds and at the end;
    ``resume=True`` continues from it, random state included), ``turntable.gif``, ``mesh.ply``
    and ``mesh.glb`` (vertex colours from the albedo; in the target's coordinates with target
    guidance), ``metrics.json`` (settings, timings, steps; with target guidance the silhouette
    IoU and Chamfer-L1 against the target) and ``config.json``. ``callback(state, loss)`` runs
    after each step; ``hook`` (a :class:`~fields3d.pipelines.hooks.TrainingHook`, e.g. the live
    viewer's) is told of every step with a snapshot of the model, and may pause or stop the run
    (which then saves and writes its outputs as at the end).

    Raises:
        InputError: a bad setting or an empty prompt; ModelNotFound / CheckpointError /
            BackendUnavailable: no usable model, a corrupt one, or CUDA asked for without it.
    """
    if not isinstance(config, GenerateConfig):
        raise InputError(f"config must be a GenerateConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    out_dir = Path(config.output)
    check_output(out_dir / CHECKPOINT)
    prior = build_prior(config, device)
    scene = Scene.of(prior)
    state = build_state(config, scene, resolve_background(config, prior), device)
    if config.resume:
        load_state(out_dir / CHECKPOINT, state, prior)
    # torch's own CPU ops on one thread: a step is many small ops (see torch_threads)
    with torch_threads(1 if device.type == "cpu" else None):
        loss = _train(config, state, prior, scene, out_dir, progress, callback, hook)
    model = GenerativeModel(
        state.field,
        state.grid,
        state.settings,
        state.background,
        state.step,
        sum(config.radius_range) / 2 * scene.radius,
        sum(config.fov_range) / 2,
        scene.up,
    )
    paths = {"checkpoint": out_dir / CHECKPOINT}
    start = time.perf_counter()
    if config.turntable_frames:
        paths["turntable"] = write_turntable(
            out_dir / "turntable.gif",
            model,
            config.turntable_frames,
            config.turntable_size,
            prior if config.latent_field else None,
        )
    mesh, evaluation = None, None
    if config.mesh_resolution:
        verts, faces, colors = extract_mesh(model, config.mesh_resolution, config.mesh_level)
        mesh = {"vertices": len(verts), "faces": len(faces), "level": config.mesh_level}
        if config.latent_field:
            mesh["colors"] = "plain grey: a latent field's colours are Stable Diffusion latents"
        if len(faces):
            paths["mesh"] = write_colored_mesh(out_dir / "mesh.ply", verts, faces, colors)
            paths["mesh_glb"] = write_colored_mesh(out_dir / "mesh.glb", verts, faces, colors)
        else:
            mesh["note"] = (
                f"no surface: the density never reaches mesh_level {config.mesh_level:g}; lower "
                "mesh_level or train longer"
            )
        if config.is_target and config.eval_views:
            views = eval_views(
                scene.center,
                scene.radius,
                scene.up,
                model.camera_distance,
                model.fov,
                config.eval_views,
            )
            evaluation = target_metrics(verts, faces, prior, views)
    sync(device)
    metrics = {
        "settings": config.to_dict(),
        "steps": state.step,
        "colors": "latent" if config.latent_field else "rgb",
        "train_seconds": state.seconds,
        "seconds_per_step": state.seconds / max(1, state.step),
        "timings": state.timings,
        "output_seconds": time.perf_counter() - start,
        "loss": loss,
        "history": state.history,
        "guidance": prior.config(),
        "nonfinite_samples": prior.sds.nonfinite_total,
        "scene": {"center": list(scene.center), "radius": scene.radius, "up": scene.up},
        "mesh": mesh,
        "target": evaluation,
        "occupancy": state.grid.occupancy_fraction(),
        "device": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fields3d": __version__,
    }
    paths["metrics"] = write_json(out_dir / "metrics.json", metrics)
    paths["config"] = write_json(out_dir / "config.json", config.to_dict())
    return GenerateResult(out_dir, state.step, state.seconds, loss, metrics, state, paths)
