"""The generation checkpoint: ``OUT/checkpoint.safetensors``, written during training
(:func:`save_state`), resumed from (:func:`load_state`, ``fields3d generate --resume``) and
rendered from (:func:`~fields3d.pipelines.generate.load_generative`, ``fields3d render``).

A :mod:`fields3d.checkpoint` file of kind ``"generate"``, written atomically (a temporary file
renamed over the old one). Tensors: ``field.*``, ``grid.*`` and ``background.*`` (a learned
background's weights, or ``background.color``), ``optim.<group>.<param>.<name>`` (Adam's
moments), ``rng.cameras`` and ``rng.prior`` (the camera and the prior's generator states, so a
resumed run draws what an uninterrupted one would). Header: ``field`` (its config), ``scene``
(centre, radius, up), ``step``, ``seconds``, ``render_step``, ``grid_resolution``,
``background`` (``"learned"`` or the colour), ``history``, ``timings``, ``nonfinite_total``,
``config`` (the run's GenerateConfig) and ``guidance`` (the prior's settings).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..._checks import is_int
from ...checkpoint import (
    check_finite,
    load_checkpoint,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)
from ...errors import CheckpointError, one_line
from .config import GenerateConfig
from .train import TrainState

CHECKPOINT = "checkpoint.safetensors"
KIND = "generate"


def save_state(path: Path, config: GenerateConfig, state: TrainState, prior) -> None:
    tensors = {f"field.{k}": v for k, v in state.field.state_dict().items()}
    tensors.update({f"grid.{k}": v for k, v in state.grid.state_dict().items()})
    if isinstance(state.background, torch.Tensor):
        tensors["background.color"] = state.background
        background = [float(v) for v in state.background]
    else:
        tensors.update({f"background.{k}": v for k, v in state.background.state_dict().items()})
        background = "learned"
    tensors.update(optimizer_tensors(state.optimizer))
    tensors["rng.cameras"] = state.generator.get_state()
    prior_state = prior.state_dict()
    tensors["rng.prior"] = prior_state["generator"]
    meta = {
        "kind": KIND,
        "field": state.field.config(),
        "scene": {
            "center": list(state.scene.center),
            "radius": state.scene.radius,
            "up": state.scene.up,
        },
        "step": state.step,
        "seconds": state.seconds,
        "render_step": state.settings.step,
        "grid_resolution": state.grid.resolution,
        "background": background,
        "history": state.history[-200:],
        "timings": state.timings,
        "nonfinite_total": prior_state["nonfinite_total"],
        "config": config.to_dict(),
        "guidance": prior.config(),
    }
    save_checkpoint(path, tensors, meta)


def read_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    """A generation checkpoint's tensors and header (CheckpointError for another kind, NaN or
    inf weights, or a header without the counters)."""
    tensors, meta = load_checkpoint(path, kinds=(KIND,))
    check_finite(path, tensors)
    try:
        ok = is_int(meta["step"]) and meta["step"] >= 0 and isinstance(meta["field"], dict)
        scene = meta["scene"]
        ok = ok and len(scene["center"]) == 3 and float(scene["radius"]) > 0
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete generation ({type(exc).__name__}: "
            f"{one_line(exc)}); generate it again with `fields3d generate`"
        ) from None
    if not ok:
        raise CheckpointError(
            f"checkpoint {path} holds a bad step or scene; generate it again with `fields3d generate`"
        )
    return tensors, meta


def restore_modules(state_like, tensors: dict[str, torch.Tensor]) -> None:
    """Load ``field.*``, ``grid.*`` and ``background.*`` strictly (RuntimeError when one is
    missing, extra or misshapen)."""
    state_like.field.load_state_dict(_part(tensors, "field."))
    state_like.grid.load_state_dict(_part(tensors, "grid."))
    if isinstance(state_like.background, torch.Tensor):
        state_like.background.copy_(tensors["background.color"])
    else:
        state_like.background.load_state_dict(_part(tensors, "background."))


def _part(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_state(path: Path, state: TrainState, prior) -> None:
    """Restore ``state`` (and the prior's random state) in place from a checkpoint written by
    :func:`save_state` with the same settings (CheckpointError otherwise)."""
    tensors, meta = read_checkpoint(path)
    background = (
        [float(v) for v in state.background]
        if isinstance(state.background, torch.Tensor)
        else "learned"
    )
    if (
        meta["field"] != state.field.config()
        or meta["grid_resolution"] != state.grid.resolution
        or meta["background"] != background
    ):
        raise CheckpointError(
            f"checkpoint {path} was written with other field settings ({meta['field']}); "
            "resume with the settings it was generated with, or start again without --resume"
        )
    device = state.grid.values.device
    try:
        restore_modules(state, tensors)
        state.generator.set_state(tensors["rng.cameras"])
        prior.load_state_dict(
            {"generator": tensors["rng.prior"], "nonfinite_total": meta["nonfinite_total"]}
        )
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete generation "
            f"({type(exc).__name__}: {one_line(exc)}); start again without --resume"
        ) from exc
    restore_optimizer(state.optimizer, tensors, device)
    state.step, state.seconds = meta["step"], meta["seconds"]
    state.history = [list(h) for h in meta.get("history", [])]
    state.timings = dict(meta.get("timings", state.timings))
