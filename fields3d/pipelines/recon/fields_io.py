"""The field methods' side of the pipeline: fit, extract the mesh, save and load checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from ...checkpoint import check_finite, load_checkpoint, save_checkpoint
from ...errors import CheckpointError, InputError, one_line
from ...fields.sdf_grid import BandSDFGrid
from ...geometry.closing import closing_radius
from ...geometry.marching_cubes import marching_cubes, mesh_field
from ...geometry.pointcloud import Normalization
from .._common import torch_threads

KINDS = ("band_sdf_grid", "neural_sdf")
BOUNDS = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))


def fit_field(method: str, points: np.ndarray, config, device: torch.device, stages):
    """Fit ``method`` to ``(N, 3)`` unit-cube points; returns ``(field, info)``."""
    if method == "gridpull":
        from .gridpull import GridPullConfig, fit_gridpull

        cfg = GridPullConfig(resolution=config.resolution, seed=config.seed)
        cfg = cfg if config.steps is None else dataclasses.replace(cfg, steps=config.steps)
    else:
        from .neural import NeuralConfig, fit_neural

        cfg = NeuralConfig(seed=config.seed)
        cfg = cfg if config.steps is None else dataclasses.replace(cfg, steps=config.steps)
    radius = closing_radius(cKDTree(points), cfg.coarse_resolution)
    total = cfg.steps + getattr(cfg, "init_steps", 0)
    timings: dict = {}
    with stages.stage(f"{method} fit", total=total) as update:

        def report(step: int, parts: dict) -> None:
            update(step, " ".join(f"{k} {v:.2e}" for k, v in parts.items()))

        # one torch thread on the CPU: GridPull on 2 busy cores took 3 s a step with two, 55 ms with
        # one, and torch's spinning threads starved the core's pool in the neural fit (bunny step
        # 235-290 ms against 69-113 ms)
        with torch_threads(1 if device.type == "cpu" else None):
            if method == "gridpull":
                field = fit_gridpull(points, cfg, report, device=device, info=timings)
            else:
                field = fit_neural(points, cfg, report, device=str(device))
    info = {
        "method": method,
        "settings": dataclasses.asdict(cfg),
        "gap_radius": radius,
        "fit": timings,
    }
    return field, info


def extract(field, resolution: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of the field's zero level on ``resolution``^3 points over ``[-1, 1]^3``."""
    if isinstance(field, BandSDFGrid) and field.resolution == resolution:
        spacing = (2.0 / (resolution - 1),) * 3
        verts, faces = marching_cubes(field.dense(), 0.0, origin=BOUNDS[0], spacing=spacing)
    else:
        verts, faces = mesh_field(field, BOUNDS, resolution, 0.0, device=device)
    return verts.detach().cpu().numpy().astype(np.float64), faces.cpu().numpy()


def save_field(path: Path, field, norm: Normalization, config) -> Path:
    """Checkpoint of a fitted field with what ``fields3d mesh`` needs to mesh it again."""
    meta = {
        "normalization": norm.to_dict(),
        "recon": {"method": config.method, "input": str(config.input)},
    }
    if isinstance(field, BandSDFGrid):
        meta |= {"kind": "band_sdf_grid", "resolution": field.resolution}
        tensors = {"coarse": field.coarse, "band_index": field.band_index, "values": field.values}
    else:
        meta |= {"kind": "neural_sdf", "config": field.config()}
        tensors = dict(field.state_dict())
    return save_checkpoint(path, tensors, meta)


def load_field(path, device: torch.device):
    """``(field, normalization, meta)`` from a checkpoint written by :func:`save_field`."""
    tensors, meta = load_checkpoint(path, KINDS)
    try:
        norm = Normalization.from_dict(meta["normalization"])
        if meta["kind"] == "band_sdf_grid":
            field = BandSDFGrid.from_parts(
                tensors["coarse"], tensors["band_index"], tensors["values"], int(meta["resolution"])
            )
        else:
            from ...fields.neural_sdf import NeuralSDF

            field = NeuralSDF.from_config(meta["config"])
            field.load_state_dict(tensors)
    except (
        KeyError,
        IndexError,
        ValueError,
        RuntimeError,
        TypeError,
        AttributeError,
        OverflowError,
        InputError,
    ) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete {meta.get('kind')} ({one_line(exc)})"
        ) from exc
    check_finite(path, tensors)
    return field.to(device), norm, meta
