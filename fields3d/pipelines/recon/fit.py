"""The field methods' fit and meshing: ``fit_field`` runs GridPull or the neural SDF on the
normalised points, ``extract`` meshes the fitted field's zero level."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy.spatial import cKDTree

from ...fields.sdf_grid import BandSDFGrid
from ...geometry.closing import closing_radius
from ...geometry.marching_cubes import marching_cubes, mesh_field
from .._common import torch_threads

BOUNDS = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))


def fit_field(
    method: str, points: np.ndarray, config, device: torch.device, stages, hook=None, view_dirs=None
):
    """Fit ``method`` to ``(N, 3)`` unit-cube points; returns ``(field, info)``. ``hook``: a
    :class:`~fields3d.pipelines.hooks.TrainingHook` told of the optimisation's steps;
    ``view_dirs``: ``(N, 3)`` unit directions from each point's sensor (GridPull leaves out the
    points facing away from theirs), or None."""
    if method == "gridpull":
        from .gridpull import GridPullConfig, fit_gridpull

        cfg = GridPullConfig(resolution=config.resolution, seed=config.seed)
        cfg = cfg if config.steps is None else dataclasses.replace(cfg, steps=config.steps)
    else:
        from .neural import NeuralConfig, fit_neural

        cfg = NeuralConfig(seed=config.seed, field_modulation=config.field_modulation)
        cfg = cfg if config.steps is None else dataclasses.replace(cfg, steps=config.steps)
    radius = closing_radius(cKDTree(points), cfg.coarse_resolution)
    total = cfg.steps + getattr(cfg, "init_steps", 0)
    timings: dict = {}
    with stages.stage(f"{method} fit", total=total) as update:

        def report(step: int, parts: dict) -> None:
            update(step, " ".join(f"{k} {v:.2e}" for k, v in parts.items()))

        # one torch thread on the CPU: torch's spinning OpenMP workers starve the core's thread pool
        # when both run a step's ops in turn (benchmarks/RESULTS.md, "Figures moved out of code
        # comments", has the step times with one and two threads)
        with torch_threads(1 if device.type == "cpu" else None):
            if method == "gridpull":
                field = fit_gridpull(
                    points, cfg, report, device=device, info=timings, hook=hook, view_dirs=view_dirs
                )
            else:
                field = fit_neural(points, cfg, report, device=str(device), hook=hook)
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
