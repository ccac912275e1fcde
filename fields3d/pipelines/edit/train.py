"""The edit loop: random cameras -> the voxel field's renders -> the prior's SDS gradient, plus
the correlation regulariser -> Adam on the edited grid's tables.

One step (:func:`edit_step`): draw ``batch_size`` :class:`~fields3d.guidance.SphericalCameras`
around the source's centre at its cameras' distance (times ``distance_range``) and field of view,
render the edited grid through our marcher and compositor (the whole box: an edit may put matter
anywhere; samples behind opaque surfaces pruned), ask the prior for the SDS gradient on the
pictures, and step Adam on ``guidance_loss + reg_weight * (1 - corr(sigma_orig, sigma_edit))``
(:mod:`fields3d.pipelines.edit.regularise`). The distilled original never changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field as dc_field

import torch

from ...errors import check_loss
from ...guidance import SphericalCameras, guidance_loss
from .config import EditConfig
from .grid import VoxelField
from .model import render_views
from .regularise import correlation_loss
from .source import Source

STEPS_PER_DIAGONAL = 256


@dataclass
class EditState:
    """Everything a resumed edit needs besides the config, the source and the prior."""

    original: VoxelField  # the distilled source, frozen
    edited: VoxelField
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # cameras (CPU)
    background: torch.Tensor  # (3,)
    render_step: float
    distill: dict
    step: int = 0
    seconds: float = 0.0
    history: list = dc_field(default_factory=list)  # [step, seconds, sds loss, reg loss]
    timings: dict = dc_field(
        default_factory=lambda: {"render": 0.0, "guidance": 0.0, "backward": 0.0}
    )
    original_density: torch.Tensor | None = None  # cached (R, R, R)

    def reference(self) -> torch.Tensor:
        if self.original_density is None:
            with torch.no_grad():
                self.original_density = self.original.density_grid().detach()
        return self.original_density


def render_step(config: EditConfig, source: Source) -> float:
    """The marching step in scene units: ``step_size`` half-diagonals (default 2/256)."""
    return source.radius * (config.step_size or 2 / STEPS_PER_DIAGONAL)


def new_state(
    config: EditConfig, original: VoxelField, source: Source, distill: dict, device
) -> EditState:
    """The edited grid starts as a copy of the original; Adam on both its tables."""
    edited = VoxelField(source.box, config.resolution, device=device)
    edited.load_state_dict(original.state_dict())
    edited.requires_grad_(True)
    original.requires_grad_(False)
    groups = [
        {"params": [edited.sigma_grid.params], "lr": config.lr},
        {"params": [edited.color_grid.params], "lr": config.lr * config.color_lr_scale},
    ]
    optimizer = torch.optim.Adam(groups, lr=config.lr, betas=(0.9, 0.99), eps=1e-15)
    return EditState(
        original,
        edited,
        optimizer,
        torch.Generator("cpu").manual_seed(config.seed),
        torch.tensor(source.background, device=device),
        render_step(config, source),
        distill,
    )


def _uniform(generator: torch.Generator, n: int, bounds) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)


def random_views(
    config: EditConfig, source: Source, generator: torch.Generator, n: int
) -> SphericalCameras:
    """``n`` random views around the source's centre (float32, CPU)."""
    azimuth = _uniform(generator, n, config.azimuth_range)
    elevation = _uniform(generator, n, config.elevation_range)
    distance = _uniform(generator, n, config.distance_range) * source.distance
    fov = torch.full((n,), float(source.fov))
    return SphericalCameras(
        azimuth.float(), elevation.float(), distance.float(), fov, source.center, source.up
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def edit_step(config: EditConfig, state: EditState, source: Source, prior, total: int) -> dict:
    """One Adam step; returns the prior's loss and the regulariser's value."""
    device = state.background.device
    views = random_views(config, source, state.generator, config.batch_size)
    cams = views.to_cameras(config.render_size).to(device)
    t0 = time.perf_counter()
    out = render_views(state.edited, cams, state.background, state.render_step)
    sync(device)
    t1 = time.perf_counter()
    guided = prior(out["color"], views, min(state.step, total), total)
    sync(device)
    t2 = time.perf_counter()
    loss = guidance_loss(out["color"], guided.grad)
    reg = correlation_loss(state.reference(), state.edited.density_grid(), config.reg_window)
    if config.reg_weight > 0:
        loss = loss + config.reg_weight * reg
    value = float(guided.diagnostics["loss"])
    check_loss(value, state.step + 1, config.lr)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    sync(device)
    t3 = time.perf_counter()
    for key, seconds in (("render", t1 - t0), ("guidance", t2 - t1), ("backward", t3 - t2)):
        state.timings[key] += seconds
    state.step += 1
    return {"loss": value, "reg": float(reg.detach())}
