"""The edit checkpoint: ``OUT/checkpoint.safetensors``, kind ``"edit"``.

Written atomically during the edit (:func:`save_state`) and at the end, resumed from
(``--resume``) and rendered from (:func:`load_edit`; ``fields3d render`` and ``fields3d view``
through :func:`fields3d.pipelines.models.load_model`). Tensors: ``field.*`` (the voxel field that
renders: the edited grid while the edit runs, the merged one when it is done), ``original.*``
(the distilled original, the frozen reference), ``mask`` (uint8 ``(R, R, R)``, once localised),
``optim.*`` (Adam's moments), ``rng.cameras`` and ``rng.prior``. Header: ``field`` (its config),
``scene`` (``center``, ``up``, ``camera_distance``, ``fov``), ``background``, ``render_step``,
``step``, ``seconds``, ``stage`` (``"editing"`` or ``"done"``; a finished run also keeps
``edited.*``, so ``--resume`` with more steps goes on editing), ``history``, ``timings``,
``distill``, ``nonfinite_total``, ``config`` and ``guidance``. :func:`save_voxels` writes a plain
voxel field in the same format (stage ``"done"``, no run state): a source built without training.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from ..._checks import is_int, rgb_triple
from ...checkpoint import (
    check_finite,
    load_checkpoint,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)
from ...errors import CheckpointError, InputError, one_line
from ...render.volume import RenderSettings
from .._common import resolve_device
from .grid import VoxelField
from .model import KIND, EditModel, occupancy_of

CHECKPOINT = "checkpoint.safetensors"
STAGES = ("editing", "done")


def field_tensors(prefix: str, field: VoxelField) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in field.state_dict().items()}


def header(
    field: VoxelField,
    *,
    center,
    up: str,
    camera_distance: float,
    fov: float,
    background,
    render_step: float,
    step: int = 0,
    stage: str = "done",
    **extra,
) -> dict:
    """The checkpoint's JSON header (module docstring); ``extra`` adds run state."""
    return {
        "kind": KIND,
        "field": field.config(),
        "scene": {
            "center": [float(c) for c in center],
            "up": up,
            "camera_distance": float(camera_distance),
            "fov": float(fov),
        },
        "background": [float(v) for v in background],
        "render_step": float(render_step),
        "step": int(step),
        "stage": stage,
        **extra,
    }


def save_voxels(
    path: str | os.PathLike,
    field: VoxelField,
    *,
    up: str = "y",
    camera_distance: float | None = None,
    fov: float = 40.0,
    background=(1.0, 1.0, 1.0),
    render_step: float | None = None,
) -> Path:
    """Write ``field`` as an edit-kind checkpoint that renders by itself (a source for
    ``fields3d edit``, or something to look at): the cameras look at the box's centre from
    ``camera_distance`` (default 2.5 times the box's half-diagonal) with ``fov``.

    Example:
        >>> import pathlib, tempfile, torch
        >>> from fields3d.pipelines.edit.checkpoint import load_edit, save_voxels
        >>> from fields3d.pipelines.edit.grid import VoxelField
        >>> field = VoxelField([[-1, -1, -1], [1, 1, 1]], resolution=16)
        >>> x = field.vertices()  # (16, 16, 16, 3) world positions
        >>> ball = (x.norm(dim=-1) < 0.6).float() * 200  # densities per unit
        >>> field.set_grids(ball, torch.full((16, 16, 16, 3), 0.7))
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = save_voxels(pathlib.Path(tmp.name) / "ball.safetensors", field)
        >>> model = load_edit(path, device="cpu")
        >>> out = model.render(model.orbit(4, width=16), 0)  # (H, W) pictures of it
        >>> out["color"].shape, float(out["opacity"][8, 8]) > 0.99
        (torch.Size([16, 16, 3]), True)
        >>> tmp.cleanup()
    """
    lo, hi = field.aabb.double().cpu()
    radius = float((hi - lo).norm()) / 2
    meta = header(
        field,
        center=((lo + hi) / 2).tolist(),
        up=up,
        camera_distance=camera_distance or 2.5 * radius,
        fov=fov,
        background=rgb_triple("background", background),
        render_step=render_step or 2 * radius / 256,
    )
    return save_checkpoint(path, field_tensors("field", field), meta)


def read_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    """An edit checkpoint's tensors and header (CheckpointError for another kind, NaN or inf
    values, or a header without the scene)."""
    tensors, meta = load_checkpoint(path, kinds=(KIND,))
    check_finite(path, tensors)
    try:
        scene = meta["scene"]
        ok = (
            is_int(meta["step"])
            and meta["step"] >= 0
            and meta["stage"] in STAGES
            and isinstance(meta["field"], dict)
            and len(scene["center"]) == 3
            and scene["up"] in ("y", "z")
            and math.isfinite(float(scene["camera_distance"]))
            and float(scene["camera_distance"]) > 0
            and 0 < float(scene["fov"]) < 180
            and float(meta["render_step"]) > 0
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete edit ({type(exc).__name__}: "
            f"{one_line(exc)}); edit again with `fields3d edit`"
        ) from None
    if not ok:
        raise CheckpointError(
            f"checkpoint {path} holds a bad step, stage or scene; edit again with `fields3d edit`"
        )
    return tensors, meta


def restore_field(prefix: str, tensors: dict, config: dict, device) -> VoxelField:
    """The voxel field ``prefix.*`` holds (RuntimeError / InputError when it does not fit)."""
    field = VoxelField.from_config(config, device=device)
    part = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    field.load_state_dict(part)
    return field.requires_grad_(False)


def load_edit(path: str | os.PathLike, device: str = "auto") -> EditModel:
    """The model in a checkpoint written by ``fields3d edit`` (or :func:`save_voxels`).

    Raises:
        ModelNotFound: no file at ``path``. CheckpointError: not an edit checkpoint, or a
            corrupt or incomplete one. BackendUnavailable: ``device="cuda"`` without CUDA.
    """
    target = resolve_device(device)
    tensors, meta = read_checkpoint(path)
    try:
        field = restore_field("field", tensors, meta["field"], target)
        background = torch.tensor(rgb_triple("background", meta["background"]), device=target)
    except (KeyError, TypeError, ValueError, RuntimeError, InputError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete edit ({type(exc).__name__}: "
            f"{one_line(exc)}); edit again with `fields3d edit`"
        ) from exc
    step = float(meta["render_step"])
    scene = meta["scene"]
    return EditModel(
        field,
        occupancy_of(field, step),
        RenderSettings(step=step),
        background,
        int(meta["step"]),
        float(scene["camera_distance"]),
        float(scene["fov"]),
        scene["up"],
    )


def save_state(path: Path, config, state, source, prior, merged=None, mask=None) -> Path:
    """The run as it stands: the edited grid, the original, Adam's moments and the random states;
    while editing the edited grid is ``field`` (what renders), once done (``merged`` and ``mask``
    given) ``field`` is the merged grid, ``edited.*`` the edited one and ``mask`` the mask."""
    done = merged is not None
    tensors = field_tensors("field", merged if done else state.edited)
    tensors.update(field_tensors("original", state.original))
    if done:
        tensors.update(field_tensors("edited", state.edited))
        tensors["mask"] = mask.to(torch.uint8)
    tensors.update(optimizer_tensors(state.optimizer))
    tensors["rng.cameras"] = state.generator.get_state()
    tensors["rng.prior"] = prior.state_dict()["generator"]
    meta = header(
        state.original,
        center=source.center,
        up=source.up,
        camera_distance=source.distance,
        fov=source.fov,
        background=source.background,
        render_step=state.render_step,
        step=state.step,
        stage="done" if done else "editing",
        seconds=state.seconds,
        history=state.history[-200:],
        timings=state.timings,
        distill=state.distill,
        nonfinite_total=prior.state_dict()["nonfinite_total"],
        source=str(source.path),
        config=config.to_dict(),
        guidance=prior.config(),
    )
    return save_checkpoint(path, tensors, meta)


def load_state(path: Path, state, prior, steps: int):
    """Restore ``state`` in place from :func:`save_state`'s checkpoint of a run with the same
    grid; returns ``(merged, mask)`` of a finished run of at least ``steps`` steps (nothing left
    to do), else ``(None, None)`` (the edit goes on from the saved step)."""
    tensors, meta = read_checkpoint(path)
    if meta["field"] != state.original.config() or "original.lo" not in tensors:
        raise CheckpointError(
            f"checkpoint {path} was written with another grid ({meta['field']}) or holds no "
            "edit run; resume with the settings it was edited with, or start again without --resume"
        )
    device = state.background.device
    done = meta["stage"] == "done"
    try:
        original = restore_field("original", tensors, meta["field"], device)
        state.original.load_state_dict(original.state_dict())
        state.original_density = None
        edited = restore_field("edited" if done else "field", tensors, meta["field"], device)
        state.edited.load_state_dict(edited.state_dict())
        state.step, state.seconds = int(meta["step"]), float(meta["seconds"])
        state.history = [list(h) for h in meta.get("history", [])]
        state.timings = dict(meta.get("timings", state.timings))
        state.distill = dict(meta.get("distill") or state.distill)
        state.generator.set_state(tensors["rng.cameras"])
        prior.load_state_dict(
            {"generator": tensors["rng.prior"], "nonfinite_total": meta["nonfinite_total"]}
        )
        finished = done and state.step >= steps
        if finished:
            merged = restore_field("field", tensors, meta["field"], device)
            mask = tensors["mask"].bool().to(device)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete edit ({type(exc).__name__}: "
            f"{one_line(exc)}); start again without --resume"
        ) from exc
    restore_optimizer(state.optimizer, tensors, device)
    return (merged, mask) if finished else (None, None)
