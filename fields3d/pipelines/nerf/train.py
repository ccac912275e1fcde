"""The NeRF training loop: random rays over all training pictures, occupancy-grid marching,
Adam on a hash-grid radiance field, checkpoints that a later run resumes from."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..._checks import MAX_BATCH, is_int, is_number
from ...checkpoint import check_finite, load_checkpoint, save_checkpoint
from ...errors import CheckpointError, InputError, check_loss, one_line
from ...fields.radiance import RadianceField
from ...render.cameras import generate_rays
from ...render.datasets import PosedImages
from ...render.occupancy import OccupancyGrid
from ...render.volume import RenderSettings, render_rays
from .config import STEPS_PER_DIAGONAL, NerfConfig

KIND = "nerf"
CAMERA_TENSORS = ("c2w", "fx", "fy", "cx", "cy")  # the training cameras' tensors in a checkpoint
MIN_RAYS, MAX_RAYS = 256, 1 << 16
MAX_STEP_COUNT = 2**62  # training steps a checkpoint can claim; more is a corrupt header


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
            color_net=config.color_net,
            device=device,
        )
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
    optimizer = torch.optim.Adam(groups, lr=config.lr, betas=(0.9, 0.99), eps=1e-15)
    return TrainState(field, grid, optimizer, settings, scene=scene_record(scene, config.data))


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


def _fraction(config: NerfConfig, state: TrainState) -> float:
    parts = []
    if config.steps is not None:
        parts.append(state.step / config.steps)
    if config.time_budget is not None:
        parts.append(state.seconds / config.time_budget)
    return max(parts)


def _set_lr(config: NerfConfig, state: TrainState) -> None:
    passed = sum(_fraction(config, state) >= f for f in config.lr_decay_at)
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
    return origins, dirs, bg, target


def _update_grid(config: NerfConfig, state: TrainState, generator: torch.Generator) -> None:
    if state.step % config.grid_every:
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
    origins, dirs, bg, target = _batch(
        scene, state.n_rays, generator, scene.images.device, config.random_background
    )
    out = render_rays(state.field, state.grid.spec(), origins, dirs, state.settings, background=bg)
    kept = out["n_rendered"]  # rays past the sample budget were not rendered
    loss = F.mse_loss(out["color"][:kept], target[:kept])
    mse = float(loss.detach())
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
    return _fraction(config, state) >= 1.0


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
    tensors.update({f"grid.{k}": v for k, v in state.grid.state_dict().items()})
    for i, group in enumerate(state.optimizer.param_groups):
        for j, p in enumerate(group["params"]):
            for name, value in state.optimizer.state.get(p, {}).items():
                tensors[f"optim.{i}.{j}.{name}"] = torch.as_tensor(value)
    meta = {
        "kind": KIND,
        "field": state.field.config(),
        "step": state.step,
        "seconds": state.seconds,
        "n_rays": state.n_rays,
        "render_step": state.settings.step,
        "grid_resolution": state.grid.resolution,
        "history": state.history[-200:],
        "config": config.to_dict(),
        "scene": state.scene,
        "background": None if scene is None else [float(v) for v in scene.background],
        "picture_size": None if scene is None else [scene.cameras.width, scene.cameras.height],
    }
    save_checkpoint(path, tensors, meta)


def restore_weights(
    field: RadianceField, grid: OccupancyGrid, tensors: dict[str, torch.Tensor]
) -> None:
    """Load the ``field.*`` and ``grid.*`` tensors :func:`save_state` wrote, strictly (RuntimeError
    when one is missing, extra or misshapen), onto the modules' device."""
    for prefix, module in (("field.", field), ("grid.", grid)):
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )


def load_state(path: Path, state: TrainState) -> None:
    """Restore ``state`` in place from a checkpoint written by :func:`save_state` for the same settings
    and scene (CheckpointError otherwise)."""
    tensors, meta = read_checkpoint(path)
    if meta["field"] != state.field.config() or meta["grid_resolution"] != state.grid.resolution:
        raise CheckpointError(
            f"checkpoint {path} was written with other field settings ({meta['field']}); "
            "resume with the settings it was trained with, or start again without --resume"
        )
    _check_scene(path, meta.get("scene"), state.scene)
    device = state.grid.values.device
    try:
        restore_weights(state.field, state.grid, tensors)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete NeRF "
            f"({type(exc).__name__}: {one_line(exc)}); "
            "start again without --resume"
        ) from exc
    for i, group in enumerate(state.optimizer.param_groups):
        for j, p in enumerate(group["params"]):
            moments = {
                k.split(".")[-1]: v.to(device)
                for k, v in tensors.items()
                if k.startswith(f"optim.{i}.{j}.")
            }
            if moments:
                moments["step"] = moments["step"].cpu()
                state.optimizer.state[p] = moments
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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device):
    sync(device)
    return time.perf_counter()
