"""The generation loop: random cameras -> our renderer -> the prior's SDS gradient -> Adam.

One step (:func:`train_step`): draw ``batch_size`` :class:`~fields3d.guidance.SphericalCameras`
around the prior's object and a point light near each, render the field through the occupancy
grid (:func:`fields3d.render.march_rays`, the pruning of :mod:`fields3d.render.volume`,
:func:`fields3d.render.render_samples`) with the step's shading, ask the prior for the SDS
gradient on the pictures, and step Adam on ``guidance_loss + orient_weight * orientation +
sparsity_weight * opacity``: DreamFusion's orientation loss (normals facing away from the camera
along a ray, weighted by the samples' compositing weights) and an opacity penalty
(threestudio's ``sqrt(opacity^2 + 0.01)``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from dataclasses import field as dc_field

import torch

from ...errors import check_loss
from ...fields.generative import BackgroundField, GenerativeField
from ...guidance import SphericalCameras, guidance_loss
from ...render.cameras import Cameras, image_rays
from ...render.composite import render_samples
from ...render.march import march_rays
from ...render.occupancy import OccupancyGrid
from ...render.volume import RenderSettings, prune_samples
from .config import GenerateConfig

STEPS_PER_DIAGONAL = 256  # marching steps across the box's diagonal (default step size)
FRONT = 45.0  # degrees: a "front" view's largest |azimuth| (the view prompts' threshold)
WARMUP_STEPS = 32  # occupancy updates visit every cell until then


@dataclass
class Scene:
    """Where the object is: the prior's centre, radius and up axis."""

    center: tuple[float, float, float]
    radius: float
    up: str

    @staticmethod
    def of(prior) -> Scene:
        return Scene(
            tuple(float(c) for c in getattr(prior, "center", (0.0, 0.0, 0.0))),
            float(getattr(prior, "radius", 1.0)),
            getattr(prior, "up", "y"),
        )


@dataclass
class TrainState:
    """Everything a resumed run needs besides the config and the prior."""

    field: GenerativeField
    grid: OccupancyGrid
    background: BackgroundField | torch.Tensor
    optimizer: torch.optim.Optimizer
    settings: RenderSettings
    scene: Scene
    generator: torch.Generator  # cameras, lights, shadings, grid updates (CPU)
    step: int = 0
    seconds: float = 0.0
    history: list = dc_field(default_factory=list)  # [step, seconds, loss]
    timings: dict = dc_field(
        default_factory=lambda: {"render": 0.0, "guidance": 0.0, "backward": 0.0}
    )


def resolve_background(config: GenerateConfig, prior) -> str | tuple:
    """``"learned"`` or an RGB triple (the config's; None: see :class:`GenerateConfig`)."""
    if config.background is not None:
        return config.background if config.background == "learned" else tuple(config.background)
    if hasattr(prior, "background") and config.is_target:
        return tuple(float(v) for v in prior.background)
    return "learned"


def channels(config: GenerateConfig) -> int:
    """The field's colour channels: 4 latent colours with ``latent_field``, else RGB."""
    return 4 if config.latent_field else 3


def build_state(
    config: GenerateConfig, scene: Scene, background, device: torch.device
) -> TrainState:
    """A fresh field (a blob), grid and optimizer (parameters from ``config.seed``)."""
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        field = GenerativeField(
            scene.center,
            scene.radius,
            encoding=config.encoding,
            n_hidden=config.n_hidden,
            blob_scale=config.blob_scale,
            blob_radius=config.blob_radius,
            channels=channels(config),
            device=device,
        )
        bg = (
            BackgroundField(device=device, channels=channels(config))
            if background == "learned"
            else torch.tensor(background, dtype=torch.float32, device=device)
        )
    aabb = field.aabb.tolist()
    grid = OccupancyGrid(aabb, resolution=config.grid_resolution).to(device)
    step = scene.radius * (config.step_size or 2 * math.sqrt(3) / STEPS_PER_DIAGONAL)
    settings = RenderSettings(step=step)
    groups = [
        {"params": field.encoding.parameters(), "weight_decay": 0.0},
        {"params": field.net.parameters(), "weight_decay": 0.0},
    ]
    if isinstance(bg, BackgroundField):
        groups.append({"params": bg.parameters(), "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups, lr=config.lr, betas=(0.9, 0.99), eps=1e-15)
    generator = torch.Generator("cpu").manual_seed(config.seed)
    return TrainState(field, grid, bg, optimizer, settings, scene, generator)


def _uniform(generator: torch.Generator, n: int, bounds) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)


def random_cameras(config: GenerateConfig, scene: Scene, generator: torch.Generator, n: int):
    """``n`` random views (:class:`SphericalCameras`, float32, CPU) with a point light each."""
    azimuth = _uniform(generator, n, config.azimuth_range)
    front = torch.rand(n, generator=generator, dtype=torch.float64) < config.front_share
    front_az = _uniform(generator, n, (-FRONT, FRONT))
    azimuth = torch.where(front, front_az, azimuth)
    elevation = _uniform(generator, n, config.elevation_range)
    radius = _uniform(generator, n, config.radius_range) * scene.radius
    fov = _uniform(generator, n, config.fov_range)
    views = SphericalCameras(
        azimuth.float(), elevation.float(), radius.float(), fov.float(), scene.center, scene.up
    )
    centre = torch.tensor(scene.center, dtype=torch.float64)
    toward = torch.nn.functional.normalize(views.positions() - centre, dim=1)
    jitter = torch.randn(n, 3, generator=generator, dtype=torch.float64) * config.light_perturb
    direction = torch.nn.functional.normalize(toward + jitter, dim=1)
    distance = _uniform(generator, n, config.light_distance_range) * scene.radius
    light = centre + direction * distance[:, None]
    return SphericalCameras(
        views.azimuth,
        views.elevation,
        views.radius,
        views.fov,
        scene.center,
        scene.up,
        light.float(),
    )


def pick_shading(config: GenerateConfig, generator: torch.Generator) -> str:
    albedo, plain = config.shares()
    u = float(torch.rand(1, generator=generator, dtype=torch.float64))
    return "albedo" if u < albedo else "textureless" if u < albedo + plain else "lambert"


def render_views(
    state: TrainState,
    cameras: Cameras,
    lights: torch.Tensor,  # (B, 3)
    shading: str,
    ambient: float,
    need_normals: bool = True,
) -> dict[str, torch.Tensor]:
    """``color`` ``(B, C, H, W)`` (C: the field's channels), ``opacity`` ``(B, 1, H, W)`` and ``orientation`` (the
    orientation loss, a scalar) of the field seen from ``cameras``, differentiable."""
    field, settings, spec = state.field, state.settings, state.grid.spec()
    colors, opacities, orient = [], [], []
    h, w = cameras.height, cameras.width
    for b in range(len(cameras)):
        origins, dirs = image_rays(cameras, b)
        samples = march_rays(
            origins, dirs, spec, step=settings.step, max_samples=settings.max_samples
        )
        samples = prune_samples(field, samples, origins, dirs, settings.t_min)
        x = samples.midpoints(origins, dirs)
        ray_dirs = dirs[samples.ray_ids]
        if need_normals or shading != "albedo":
            sigma, rgb, normals = field.shade(x, lights[b], shading, ambient)
        else:
            sigma, rgb = field(x)
            normals = None
        bg = state.background(dirs) if callable(state.background) else state.background
        out = render_samples(samples, sigma.to(origins.dtype), rgb.to(origins.dtype), background=bg)
        colors.append(out["color"].view(h, w, -1).permute(2, 0, 1))
        opacities.append(out["opacity"].view(1, h, w))
        if normals is not None and samples.n_samples:
            facing = (normals * ray_dirs).sum(dim=1).clamp(min=0) ** 2
            orient.append((out["weights"].detach() * facing).sum() / (h * w))
        else:
            orient.append(colors[-1].new_zeros(()))
    return {
        "color": torch.stack(colors),
        "opacity": torch.stack(opacities),
        "orientation": torch.stack(orient).mean(),
    }


def update_grid(config: GenerateConfig, state: TrainState) -> None:
    if state.step % config.grid_every:
        return
    step = state.settings.step
    state.grid.update(
        lambda x: state.field.density(x) * step,
        warmup=state.step < WARMUP_STEPS,
        generator=state.generator,
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(
    config: GenerateConfig, state: TrainState, prior, total_steps: int, at: int | None = None
) -> float:
    """One Adam step; returns the prior's loss (its diagnostics' ``loss``). The prior's timestep
    range anneals as step ``at`` (default this step) of ``total_steps``."""
    device = state.field.center.device
    update_grid(config, state)
    views = random_cameras(config, state.scene, state.generator, config.batch_size)
    shading = pick_shading(config, state.generator)
    cams = views.to_cameras(config.resolution).to(device)
    lights = views.light.to(device)
    t0 = time.perf_counter()
    out = render_views(state, cams, lights, shading, config.ambient, config.orient_weight > 0)
    sync(device)
    t1 = time.perf_counter()
    at = min(state.step, total_steps) if at is None else at
    guided = prior(out["color"], views, at, total_steps)
    sync(device)
    t2 = time.perf_counter()
    loss = guidance_loss(out["color"], guided.grad)
    if config.orient_weight > 0:
        loss = loss + config.orient_weight * out["orientation"]
    if config.sparsity_weight > 0:
        loss = loss + config.sparsity_weight * ((out["opacity"] ** 2 + 0.01).sqrt().mean())
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
    return value
