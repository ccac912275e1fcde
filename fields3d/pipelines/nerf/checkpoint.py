"""The NeRF checkpoint format: ``OUT/checkpoint.safetensors``, written during training
(:func:`save_state`), resumed from (:func:`load_state`, ``fields3d nerf --resume``) and rendered
from (:func:`read_checkpoint`, :func:`~fields3d.pipelines.nerf.load_nerf`).

A :mod:`fields3d.checkpoint` file of kind ``"nerf"``. Tensors: ``field.*`` and ``grid.*`` (the
radiance field's and the occupancy grid's state dicts), ``cameras.<c2w|fx|fy|cx|cy>`` (the
training cameras) and ``optim.<group>.<param>.<name>`` (Adam's moments and step). Header:
``field`` (the field's config), ``step``, ``seconds``, ``n_rays``, ``render_step``,
``grid_resolution``, ``history`` (up to 200 ``[step, seconds, psnr]``), ``config`` (the run's
NerfConfig), ``scene`` (:func:`~fields3d.pipelines.nerf.train.scene_record`), ``background``
and ``picture_size`` (``[width, height]``); checkpoints written before the last three were kept
lack them. A run with ``occupancy="learned"`` keeps ``occupancy.*`` (the occupancy network's state
dict) in place of ``grid.*`` and the network's settings in the header's ``occupancy`` (None, or
absent in older checkpoints, for the grid).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..._checks import MAX_BATCH, is_int, is_number
from ...checkpoint import (
    check_finite,
    load_checkpoint,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)
from ...errors import CheckpointError, one_line
from ...fields.radiance import RadianceField, normalised_config
from ...render.datasets import PosedImages
from ...render.learned_occupancy import OccupancyNetwork
from ...render.occupancy import OccupancyGrid
from .config import NerfConfig
from .train import MAX_RAYS, MIN_RAYS, TrainState

CHECKPOINT = "checkpoint.safetensors"  # its name in the output folder
KIND = "nerf"
CAMERA_TENSORS = ("c2w", "fx", "fy", "cx", "cy")  # the training cameras' tensors in a checkpoint
MAX_STEP_COUNT = 2**62  # training steps a checkpoint can claim; more is a corrupt header


def save_state(
    path: Path, config: NerfConfig, state: TrainState, scene: PosedImages | None = None
) -> None:
    """Field, grid, optimizer moments and counters, atomically (a crash keeps the previous one);
    with the ``scene``'s background colour and cameras too, so that
    :func:`~fields3d.pipelines.nerf.load_nerf` renders the field as the test views were scored,
    from the training views or around them, without the pictures."""
    tensors = {f"field.{k}": v for k, v in state.field.state_dict().items()}
    if scene is not None:
        tensors.update({f"cameras.{k}": getattr(scene.cameras, k) for k in CAMERA_TENSORS})
    for prefix, module in (("grid.", state.grid), ("occupancy.", state.occupancy)):
        if module is not None:
            tensors.update({prefix + k: v for k, v in module.state_dict().items()})
    tensors.update(optimizer_tensors(state.optimizer))
    meta = {
        "kind": KIND,
        "field": state.field.config(),
        "step": state.step,
        "seconds": state.seconds,
        "n_rays": state.n_rays,
        "render_step": state.settings.step,
        "grid_resolution": config.grid_resolution,
        "occupancy": None if state.occupancy is None else state.occupancy.config(),
        "history": state.history[-200:],
        "config": config.to_dict(),
        "scene": state.scene,
        "background": None if scene is None else [float(v) for v in scene.background],
        "picture_size": None if scene is None else [scene.cameras.width, scene.cameras.height],
    }
    save_checkpoint(path, tensors, meta)


def restore_weights(
    field: RadianceField,
    grid: OccupancyGrid | None,
    tensors: dict[str, torch.Tensor],
    occupancy: OccupancyNetwork | None = None,
) -> None:
    """Load the ``field.*``, ``grid.*`` and ``occupancy.*`` tensors :func:`save_state` wrote,
    strictly (RuntimeError when one is missing, extra or misshapen), onto the modules' device
    (a run with a learned occupancy has no grid, one with a grid no network)."""
    for prefix, module in (("field.", field), ("grid.", grid), ("occupancy.", occupancy)):
        if module is None:
            continue
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )


def load_state(path: Path, state: TrainState) -> None:
    """Restore ``state`` in place from a checkpoint written by :func:`save_state` for the same settings
    and scene (CheckpointError otherwise)."""
    tensors, meta = read_checkpoint(path)
    field = normalised_config(meta["field"]) if isinstance(meta["field"], dict) else meta["field"]
    if field != state.field.config() or (
        state.grid is not None and meta["grid_resolution"] != state.grid.resolution
    ):
        raise CheckpointError(
            f"checkpoint {path} was written with other field settings ({meta['field']}); "
            "resume with the settings it was trained with, or start again without --resume"
        )
    _check_occupancy(path, meta.get("occupancy"), state.occupancy)
    _check_scene(path, meta.get("scene"), state.scene)
    device = state.field.aabb.device
    try:
        restore_weights(state.field, state.grid, tensors, state.occupancy)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete NeRF "
            f"({type(exc).__name__}: {one_line(exc)}); "
            "start again without --resume"
        ) from exc
    restore_optimizer(state.optimizer, tensors, device)
    state.step, state.seconds, state.n_rays = meta["step"], meta["seconds"], meta["n_rays"]
    state.history = [tuple(h) for h in meta.get("history", [])]


def read_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    """A NeRF checkpoint's tensors and header, refused (CheckpointError) when it is another kind,
    holds NaN or inf weights, or its counters and settings are out of range."""
    tensors, meta = load_checkpoint(path, kinds=(KIND,))
    check_finite(path, tensors)
    _check_counters(path, meta)
    return tensors, meta


def _check_counters(path, meta: dict) -> None:
    """CheckpointError unless the counters and settings :func:`save_state` wrote beside the weights are
    there and in range (a hand-edited or corrupt header would otherwise fail later, in rendering or
    training, with a message that does not name the checkpoint)."""
    try:
        aabb = [[float(v) for v in corner] for corner in meta["field"]["aabb"]]
        extent = max(hi - lo for lo, hi in zip(*aabb))
        checks = (
            (
                "step",
                meta["step"],
                is_int(meta["step"]) and 0 <= meta["step"] <= MAX_STEP_COUNT,
                f"an integer from 0 to {MAX_STEP_COUNT}",
            ),
            (
                "seconds",
                meta["seconds"],
                is_number(meta["seconds"]) and 0 <= meta["seconds"] < math.inf,
                "a finite number >= 0",
            ),
            (
                "n_rays",
                meta["n_rays"],
                is_int(meta["n_rays"]) and MIN_RAYS <= meta["n_rays"] <= MAX_RAYS,
                f"an integer from {MIN_RAYS} to {MAX_RAYS}",
            ),
            (
                "render_step",
                meta["render_step"],
                is_number(meta["render_step"]) and 1e-7 * extent <= meta["render_step"] <= extent,
                f"a number from 1e-07 to 1 times the scene box's extent ({extent:g})",
            ),
            (
                "config.samples_per_step",
                meta["config"]["samples_per_step"],
                is_int(meta["config"]["samples_per_step"])
                and 256 <= meta["config"]["samples_per_step"] <= MAX_BATCH,
                f"an integer from 256 to {MAX_BATCH}",
            ),
            (
                "history",
                meta.get("history", []),
                _is_history(meta.get("history", [])),
                "a list of [step, seconds, psnr] number triples",
            ),
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete NeRF ({type(exc).__name__}: "
            f"{one_line(exc)}); train it again with `fields3d nerf`"
        ) from None
    for name, value, ok, expected in checks:
        if not ok:
            raise CheckpointError(
                f"checkpoint {path} holds a bad {name} {value!r}: expected {expected}; "
                "train it again with `fields3d nerf`"
            )


def _is_history(history) -> bool:
    return isinstance(history, list) and all(
        isinstance(h, list) and len(h) == 3 and all(is_number(v) for v in h) for h in history
    )


def _check_scene(path: Path, old, new: dict | None) -> None:
    """CheckpointError unless the checkpoint's scene record matches this run's; a checkpoint
    written before the record was kept cannot tell, and is accepted."""
    if old is None or new is None:
        return
    old = old if isinstance(old, dict) else {}
    if (old.get("views"), old.get("hash")) != (new["views"], new["hash"]):
        raise CheckpointError(
            f"checkpoint {path} was trained on another scene ({old.get('data')!r}: {old.get('views')} training views, "
            f"scene hash {old.get('hash')}; this run: {new['data']!r}: {new['views']} views, scene hash "
            f"{new['hash']}); resume with the scene it was trained on, or start again without --resume"
        )


def _check_occupancy(path: Path, saved, network: OccupancyNetwork | None) -> None:
    """CheckpointError unless the checkpoint's occupancy (None: the grid; else the network's
    settings) is this run's."""
    ours = None if network is None else network.config()
    if saved != ours:
        said = "the grid" if saved is None else f"a learned network ({saved})"
        run = "the grid" if ours is None else "a learned network"
        raise CheckpointError(
            f"checkpoint {path} was trained with {said} for occupancy, this run uses {run}; "
            "resume with the occupancy it was trained with (--occupancy), or start again without "
            "--resume"
        )
