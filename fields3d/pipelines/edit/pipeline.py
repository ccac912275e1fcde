"""``edit``: text-guided editing of a radiance field (Vox-E), with progress, checkpoints, resume
and outputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ... import __version__
from ..._io import check_output
from ...errors import InputError
from ...guidance import create
from .._common import device_name, resolve_device, torch_threads, write_json
from .._progress import Stages
from .checkpoint import CHECKPOINT, load_state, save_state
from .config import EditConfig
from .distill import distill
from .grid import VoxelField
from .outputs import (
    localise,
    model_of,
    structure,
    write_mask_picture,
    write_mesh,
    write_turntable,
)
from .source import Source, open_source
from .train import EditState, edit_step, new_state, render_step


@dataclass
class EditResult:
    out_dir: Path
    steps: int
    edit_seconds: float
    metrics: dict  # what metrics.json holds
    state: EditState
    merged: VoxelField
    mask: torch.Tensor  # (R, R, R) bool, [x, y, z]
    paths: dict  # name -> path written


def build_prior(config: EditConfig, device: torch.device, source: Source):
    """The prior the config names (ModelNotFound, CheckpointError, InputError and
    BackendUnavailable pass through with their messages)."""
    settings = dict(config.guidance_options)
    settings.setdefault("device", device.type)
    settings.setdefault("seed", config.seed)
    settings["prompt"] = config.prompt
    if config.is_target:
        settings.setdefault("background", source.background)
    elif config.model is not None:
        settings.setdefault("model", str(config.model))
    return create(str(config.guidance), **settings)


def _start(config, source, device, out_dir, prior, stages):
    """The run's state: from the checkpoint with ``resume`` (and, when it finished, its merged
    grid and mask), else the source distilled afresh."""
    path = out_dir / CHECKPOINT
    if config.resume and path.is_file():
        placeholder = VoxelField(source.box, config.resolution, device=device)
        state = new_state(config, placeholder, source, {}, device)
        merged, mask = load_state(path, state, prior, config.steps)
        return state, merged, mask
    with stages.stage("distil", total=config.distill_steps or 1) as update:
        original, info = distill(
            source,
            config.resolution,
            device,
            views=config.distill_views,
            size=config.render_size,
            steps=config.distill_steps,
            lr=config.lr,
            step=render_step(config, source),
            report=lambda s, loss: update(s, f"mse {loss:.3g}"),
        )
        update(config.distill_steps or 1, f"PSNR {info['psnr']:.2f} dB")
    return new_state(config, original, source, info, device), None, None


def _edit(config, state, source, prior, out_dir, stages, callback) -> None:
    last_save = state.seconds
    device = state.background.device
    with stages.stage("edit", total=config.steps) as update:
        while state.step < config.steps:
            start = time.perf_counter()
            values = edit_step(config, state, source, prior, config.steps)
            state.seconds += time.perf_counter() - start
            if state.step % 10 == 0 or state.step == config.steps:
                state.history.append(
                    [state.step, round(state.seconds, 3), values["loss"], values["reg"]]
                )
            update(state.step, f"loss {values['loss']:.4g}  reg {values['reg']:.4f}")
            if state.seconds - last_save >= config.checkpoint_every:
                save_state(out_dir / CHECKPOINT, config, state, source, prior)
                last_save = state.seconds
            if callback is not None:
                callback(state, values)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def edit(
    config: EditConfig,
    progress: bool = True,
    callback: Callable[[EditState, dict], None] | None = None,
) -> EditResult:
    """Edit ``config.checkpoint`` as ``config.prompt`` says; write everything to ``config.output``.

    Distils the source into a voxel field, edits a copy by score distillation with the
    correlation regulariser, localises the edit (graph cut) and merges it into the original.
    Writes ``checkpoint.safetensors`` (every ``checkpoint_every`` seconds and at the end,
    atomically; ``resume=True`` continues from it; ``fields3d render`` and ``fields3d view``
    open it), ``turntable.gif`` (before | after), ``mask.png``, ``mesh.ply``, ``metrics.json``
    (the distillation PSNR, timings, the structure kept, the mask) and ``config.json``.
    ``callback(state, {"loss", "reg"})`` runs after each step.

    Raises:
        InputError: a bad setting or an empty prompt. ModelNotFound: no checkpoint (or model)
            at the path given. CheckpointError: a checkpoint of the wrong kind or a corrupt one.
        BackendUnavailable: CUDA asked for without it; diffusers or PyMaxflow missing.

    Example:
        >>> from fields3d.pipelines.edit import EditConfig, edit
        >>> EditConfig(checkpoint="out/spot/checkpoint.safetensors", prompt=" ")
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: prompt must describe the edit (e.g. 'wearing a party hat'), got ' '
    """
    if not isinstance(config, EditConfig):
        raise InputError(f"config must be an EditConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    out_dir = Path(config.output)
    check_output(out_dir / CHECKPOINT)
    source = open_source(config.checkpoint, device.type)
    prior = build_prior(config, device, source)
    with Stages(progress) as stages, torch_threads(1 if device.type == "cpu" else None):
        state, merged, mask = _start(config, source, device, out_dir, prior, stages)
        if merged is None:
            _edit(config, state, source, prior, out_dir, stages, callback)
            save_state(out_dir / CHECKPOINT, config, state, source, prior)
            drawn = prior.state_dict()  # localising draws noise: a resumed edit must not see it
            with stages.stage("localise", total=1) as update:
                mask, localised = localise(config, state, source, prior)
                prior.load_state_dict(drawn)
                merged = state.original.merged(state.edited, mask)
                update(
                    1, f"{localised['method']}: {100 * float(mask.float().mean()):.1f}% of voxels"
                )
            state.distill["localise"] = localised
            save_state(out_dir / CHECKPOINT, config, state, source, prior, merged, mask)
        with stages.stage("outputs", total=1):
            paths, outputs = _outputs(config, state, source, merged, mask, out_dir)
    metrics = _metrics(config, state, source, prior, merged, mask, outputs, device)
    paths["checkpoint"] = out_dir / CHECKPOINT
    paths["metrics"] = write_json(out_dir / "metrics.json", metrics)
    paths["config"] = write_json(out_dir / "config.json", config.to_dict())
    return EditResult(out_dir, state.step, state.seconds, metrics, state, merged, mask, paths)


def _outputs(config, state, source, merged, mask, out_dir: Path) -> tuple[dict, dict]:
    start = time.perf_counter()
    after = model_of(merged, source, state)
    paths, info = {}, {}
    if config.turntable_frames:
        before = model_of(state.original, source, state)
        paths["turntable"] = write_turntable(
            out_dir / "turntable.gif", before, after, config.turntable_frames, config.turntable_size
        )
        paths["mask"] = write_mask_picture(out_dir / "mask.png", after, mask, config.turntable_size)
    if config.mesh_level > 0:
        info["mesh"] = write_mesh(out_dir / "mesh.ply", merged, config.mesh_level)
        if "note" not in info["mesh"]:
            paths["mesh"] = out_dir / "mesh.ply"
    info["output_seconds"] = time.perf_counter() - start
    return paths, info


def _metrics(config, state, source, prior, merged, mask, outputs, device) -> dict:
    return {
        "settings": config.to_dict(),
        "source": {"path": str(source.path), "kind": source.kind, "box": source.box},
        "distill": {k: v for k, v in state.distill.items() if k != "localise"},
        "localise": state.distill.get("localise"),
        "steps": state.step,
        "edit_seconds": state.seconds,
        "seconds_per_step": state.seconds / max(1, state.step),
        "timings": state.timings,
        "history": state.history,
        "regulariser": {"loss": "1 - Pearson correlation", "window": config.reg_window},
        "structure": structure(state, merged, mask),
        "mask_fraction": float(mask.float().mean()),
        "guidance": prior.config(),
        "nonfinite_samples": prior.sds.nonfinite_total,
        **outputs,
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "fields3d": __version__,
    }
