"""Distilling the source's radiance field into a voxel field: sample, then fit renders.

Two stages, the cheapest first:

1. **Sample.** The source field's density and colour at every vertex of the grid
   (:meth:`~fields3d.pipelines.edit.source.Source.sample`) are written into the tables directly
   (:meth:`VoxelField.set_grids`): one pass over ``R^3`` points, no optimisation.
2. **Fit renders.** ``steps`` Adam steps on the mean squared error between the grid's renders and
   the source's own renders from ``views`` cameras around it: point samples alias where the
   source has detail finer than a voxel, and the renders say what the grid should look like.

The distillation PSNR (metrics.json ``distill``) compares the grid's renders with the source's
from those cameras, after each stage.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...render.image_metrics import psnr
from .grid import VoxelField
from .model import pick, render_views, ring_views
from .source import Source

CHUNK = 1 << 18  # vertices per query of the source field


@torch.no_grad()
def sample_source(source: Source, resolution: int, device: torch.device) -> VoxelField:
    """A voxel field over the source's box holding its densities and colours at the vertices."""
    field = VoxelField(source.box, resolution, device=device)
    points = field.vertices().reshape(-1, 3)
    sigmas, colors = [], []
    for chunk in points.split(CHUNK):
        s, c = source.sample(chunk)
        sigmas.append(s.to(device))
        colors.append(c.to(device))
    r = resolution
    field.set_grids(torch.cat(sigmas).view(r, r, r), torch.cat(colors).view(r, r, r, 3))
    return field


@torch.no_grad()
def source_pictures(source: Source, views: int, size: int, device: torch.device):
    """The source's renders ``(V, 3, size, size)`` from :func:`ring_views` cameras, and those
    cameras (:class:`~fields3d.render.cameras.Cameras` on ``device``)."""
    sph = ring_views(source.center, source.distance, source.fov, source.up, views)
    cams = sph.to_cameras(size).to(device)
    model_cams = cams.to(source.model.device)
    pictures = [source.render(model_cams, k)["color"].float().clamp(0, 1) for k in range(views)]
    return torch.stack(pictures).permute(0, 3, 1, 2).to(device), cams


@torch.no_grad()
def mean_psnr(field: VoxelField, cams, targets: torch.Tensor, background, step: float) -> float:
    """The mean PSNR (dB) of ``field``'s renders against ``targets`` ``(V, 3, H, W)``."""
    renders = render_views(field, cams, background, step)["color"]
    scores = [
        psnr(renders[k].permute(1, 2, 0).clamp(0, 1), targets[k].permute(1, 2, 0))
        for k in range(len(targets))
    ]
    return sum(min(s, 100.0) for s in scores) / len(scores)


def fit_renders(
    field: VoxelField,
    cams,
    targets: torch.Tensor,
    background: torch.Tensor,
    step: float,
    steps: int,
    lr: float,
    report: Callable[[int, float], None] | None = None,
) -> None:
    """``steps`` Adam steps on the photometric error of one view at a time (in turn)."""
    params = [field.sigma_grid.params, field.color_grid.params]
    optimizer = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99), eps=1e-15)
    for s in range(steps):
        k = s % len(targets)
        out = render_views(field, pick(cams, k), background, step)["color"]
        loss = ((out - targets[k : k + 1]) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if report is not None:
            report(s + 1, float(loss.detach()))


def distill(
    source: Source,
    resolution: int,
    device: torch.device,
    *,
    views: int,
    size: int,
    steps: int,
    lr: float,
    step: float,
    report: Callable[[int, float], None] | None = None,
) -> tuple[VoxelField, dict]:
    """The source distilled into a voxel field, and the PSNRs (module docstring)."""
    field = sample_source(source, resolution, device)
    targets, cams = source_pictures(source, views, size, device)
    background = torch.tensor(source.background, device=device)
    sampled = mean_psnr(field, cams, targets, background, step)
    fit_renders(field, cams, targets, background, step, steps, lr, report)
    fitted = mean_psnr(field, cams, targets, background, step) if steps else sampled
    info = {
        "psnr": fitted,
        "psnr_sampled": sampled,
        "views": views,
        "size": size,
        "fit_steps": steps,
        "method": "vertex sampling, then fitting the source's renders",
    }
    return field.requires_grad_(False), info
