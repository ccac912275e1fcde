"""The NeRF training loop: random rays over all training pictures, occupancy-grid marching,
Adam on a hash-grid radiance field. Its state is saved and resumed through
:mod:`fields3d.pipelines.nerf.checkpoint`."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import torch
import torch.nn.functional as F

from ...errors import InputError, check_loss
from ...fields.radiance import RadianceField
from ...render.cameras import generate_rays
from ...render.datasets import PosedImages
from ...render.learned_occupancy import OccupancyNetwork
from ...render.occupancy import OccupancyGrid
from ...render.volume import RenderSettings, render_rays
from .._common import run_fraction
from .config import STEPS_PER_DIAGONAL, NerfConfig
from .fewshot import AnnealedField, anneal_fraction, background_loss
from .learned import build_network, probe_loss, step_spec

MIN_RAYS, MAX_RAYS = 256, 1 << 16


@dataclass
class TrainState:
    """Everything a resumed run needs besides the config."""

    field: RadianceField
    grid: OccupancyGrid
    optimizer: torch.optim.Optimizer
    settings: RenderSettings
    step: int = 0
    seconds: float = 0.0  # training time so far (excludes evaluation and writing)
    n_rays: int = 1024
    history: list = dc_field(default_factory=list)  # (step, seconds, train psnr)
    scene: dict | None = (
        None  # scene_record of the training scene: a resume on another scene is refused
    )
    occupancy: OccupancyNetwork | None = None  # a learned occupancy (then grid is None)
    occupied_share: float | None = None  # the share of the last probes it called occupied


def build_state(config: NerfConfig, scene: PosedImages, device: torch.device) -> TrainState:
    """A fresh field, grid and optimizer for ``scene`` (parameters from ``config.seed``); ``config``
    must be :meth:`~NerfConfig.resolved` for ``device``."""
    cuda = device.type == "cuda"
    aabb = scene.aabb.tolist()
    diag = float((scene.aabb[1] - scene.aabb[0]).norm())
    with torch.random.fork_rng(devices=[device.index or 0] if cuda else []):
        torch.manual_seed(config.seed)
        field = RadianceField(
            aabb,
            n_levels=config.n_levels,
            log2_hashmap_size=config.log2_hashmap_size,
            max_resolution=config.max_resolution,
            n_hidden=config.n_hidden,
            color_layers=config.color_layers,
            view=config.view,
            field_modulation=config.field_modulation,
            mlp=config.mlp,
            density_layers=config.density_layers,
            device=device,
        )
    occupancy = build_network(config, aabb, device)
    grid = None
    if occupancy is None:
        grid = OccupancyGrid(aabb, resolution=config.grid_resolution).to(device)
    step = config.step_size or diag / STEPS_PER_DIAGONAL[device.type]
    _check_step_size(config.step_size, scene)
    settings = RenderSettings(step=step, max_samples=4 * config.samples_per_step)
    groups = [
        {"params": field.encoding.parameters(), "weight_decay": 0.0},
        {
            "params": [p for n, p in field.named_parameters() if not n.startswith("encoding.")],
            "weight_decay": 1e-6,
        },
    ]
    if occupancy is not None:
        groups.append({"params": list(occupancy.parameters()), "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups, lr=config.lr, betas=(0.9, 0.99), eps=1e-15)
    return TrainState(
        field,
        grid,
        optimizer,
        settings,
        scene=scene_record(scene, config.data),
        occupancy=occupancy,
    )


def _check_step_size(step_size: float | None, scene: PosedImages) -> None:
    """InputError unless a given marching step is 1e-7 to 1 times the scene box's largest side (the
    marcher's range, which would refuse it at the first step without naming step_size)."""
    extent = float((scene.aabb[1] - scene.aabb[0]).max())
    if step_size is not None and not 1e-7 * extent <= step_size <= extent:
        raise InputError(
            f"step_size must be from {1e-7 * extent:g} to {extent:g} for this scene (1e-07 to 1 times its "
            f"box's largest side), got {step_size!r}; leave it out for the box's diagonal / 512 (1024 "
            "on a GPU)"
        )


def scene_record(scene: PosedImages, data) -> dict:
    """What a checkpoint keeps of its training scene: the data path as given (for messages), the
    number of training views and a short hash of their poses and picture files. Neither the
    folder's place nor the picture size enters the hash: a moved folder, or the same scene at
    another downscale, is the same scene."""
    digest = hashlib.sha256(
        scene.cameras.c2w.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    )
    for path in scene.files:
        digest.update(Path(path).read_bytes())
    return {"data": str(data), "views": len(scene), "hash": digest.hexdigest()[:16]}


def _set_lr(config: NerfConfig, state: TrainState) -> None:
    passed = sum(run_fraction(config, state) >= f for f in config.lr_decay_at)
    for group in state.optimizer.param_groups:
        group["lr"] = config.lr * config.lr_decay**passed


def _batch(
    scene: PosedImages,
    n_rays: int,
    generator: torch.Generator,
    device: torch.device,
    random_bg: bool,
):
    """Random rays over all pictures and their targets composited on a background (random per ray)."""
    n, h, w = scene.images.shape[:3]
    ids = torch.randint(n, (n_rays,), generator=generator, device=device)
    xy = torch.stack(
        [
            torch.randint(w, (n_rays,), generator=generator, device=device),
            torch.randint(h, (n_rays,), generator=generator, device=device),
        ],
        1,
    )
    origins, dirs = generate_rays(scene.cameras, ids, xy.to(scene.cameras.c2w.dtype))
    rgba = scene.images[ids, xy[:, 1], xy[:, 0]]
    bg = (
        torch.rand(n_rays, 3, generator=generator, device=device)
        if random_bg
        else scene.background.expand(n_rays, 3)
    )
    target = rgba[:, :3] * rgba[:, 3:] + bg * (1 - rgba[:, 3:])
    return origins, dirs, bg, target, rgba[:, 3]


def _update_grid(config: NerfConfig, state: TrainState, generator: torch.Generator) -> None:
    if state.grid is None or state.step % config.grid_every:
        return
    step = state.settings.step
    state.grid.update(
        lambda x: state.field.density(x) * step,
        warmup=state.step < config.warmup_steps,
        generator=generator,
    )


def train_step(
    config: NerfConfig, state: TrainState, scene: PosedImages, generator: torch.Generator
) -> float:
    """One Adam step on a batch of rays; returns the batch's PSNR (dB)."""
    _update_grid(config, state, generator)
    _set_lr(config, state)
    origins, dirs, bg, target, alpha = _batch(
        scene, state.n_rays, generator, scene.images.device, config.random_background
    )
    field = state.field
    if state.step < config.anneal_steps:
        field = AnnealedField(field, field.aabb, anneal_fraction(state.step, config.anneal_steps))
    spec, probes = step_spec(state, generator)
    out = render_rays(field, spec, origins, dirs, state.settings, background=bg)
    kept = out["n_rendered"]  # rays past the sample budget were not rendered
    loss = F.mse_loss(out["color"][:kept], target[:kept])
    mse = float(loss.detach())
    if config.background_weight > 0:
        loss = loss + config.background_weight * background_loss(
            out["opacity"][:kept], alpha[:kept]
        )
    loss = loss + probe_loss(state, config, probes)  # 0 with the grid
    check_loss(mse, state.step + 1, config.lr)  # before the step: the checkpoints stay good
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    n_samples = out["n_samples"]
    if n_samples > 0:  # steer the ray count toward the sample budget
        want = state.n_rays * config.samples_per_step / n_samples
        state.n_rays = int(min(MAX_RAYS, max(MIN_RAYS, 0.9 * state.n_rays + 0.1 * want)))
    state.step += 1
    return -10 * math.log10(max(mse, 1e-10))


def should_stop(config: NerfConfig, state: TrainState) -> bool:
    return run_fraction(config, state) >= 1.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device):
    sync(device)
    return time.perf_counter()
