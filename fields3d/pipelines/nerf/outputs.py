"""What a NeRF run leaves behind: test-view renders and their PSNR/SSIM, a turntable GIF."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ...errors import InputError
from ...geometry.marching_cubes import mesh_field
from ...geometry.mesh_io import save_mesh
from ...render.cameras import Cameras, look_at
from ...render.datasets import PosedImages
from ...render.image_metrics import psnr, ssim
from ...render.volume import render_camera
from .._common import write_gif, write_png
from .learned import marching_spec
from .train import TrainState

SSIM_WINDOW = 11  # pixels on a side of SSIM's Gaussian window: the smallest picture it scores


def composite_on(images: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Straight RGBA ``(..., 4)`` over a background colour: ``(..., 3)``."""
    return images[..., :3] * images[..., 3:] + background * (1 - images[..., 3:])


def render_view(state, cameras: Cameras, index: int, background: torch.Tensor, chunk: int) -> dict:
    """Camera ``index``'s picture through ``state``'s field (a TrainState, a NerfModel)."""
    return render_camera(
        state.field, marching_spec(state), cameras, index, state.settings, background, chunk
    )


def check_viewpoints(train: PosedImages, data) -> None:
    """InputError when all of two or more training cameras sit at one point: no parallax, nothing
    to learn depth from (and no orbit to show it from)."""
    centres = train.cameras.c2w[:, :3, 3]
    if len(centres) > 1 and float((centres - centres[0]).abs().max()) <= 1e-9 * (
        1.0 + float(centres[0].abs().max())
    ):
        where = ", ".join(f"{float(v):g}" for v in centres[0])
        raise InputError(
            f"all {len(centres)} training cameras of {data} sit at one point ({where}); NeRF needs views "
            "from different places: check the transform_matrix translations"
        )


def check_scoreable(test: PosedImages, data, downscale: int) -> None:
    """InputError unless the test pictures are large enough for SSIM (checked before training)."""
    w, h = test.cameras.width, test.cameras.height
    if min(w, h) < SSIM_WINDOW:
        fix = "use a smaller downscale" if downscale > 1 else "use larger pictures"
        raise InputError(
            f"the test pictures of {data} are {w}x{h} pixels (downscale {downscale}); scoring them "
            f"with SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW}: {fix}"
        )


def evaluate(
    state: TrainState, test: PosedImages, out_dir: Path | None, chunk: int, limit: int | None = None
) -> dict:
    """PSNR / SSIM of the test views on the dataset's background; writes ``test/r_<i>.png`` when out_dir is set."""
    scores = []
    n = len(test) if limit is None else min(limit, len(test))
    for i in range(n):
        image = render_view(state, test.cameras, i, test.background, chunk)["color"].clamp(0, 1)
        target = composite_on(test.images[i], test.background)
        scores.append((psnr(image, target), ssim(image, target, window=SSIM_WINDOW)))
        if out_dir is not None:
            write_png(out_dir / "test" / f"r_{i}.png", image)
    return {
        "psnr": float(np.mean([s[0] for s in scores])),
        "ssim": float(np.mean([s[1] for s in scores])),
        "per_view_psnr": [s[0] for s in scores],
        "views": n,
    }


def orbit_cameras(reference: Cameras, frames: int) -> Cameras:
    """``frames`` cameras circling the world's z axis at the mean distance and height of ``reference``."""
    centres = reference.c2w[:, :3, 3]
    height = float(centres[:, 2].mean())
    radius = max(
        float(centres[:, :2].norm(dim=1).mean()), 0.5 * abs(height)
    )  # on the axis: 63 deg down
    height = max(height, 0.3 * radius)
    poses = [
        look_at(
            [radius * math.cos(a), radius * math.sin(a), height], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]
        )
        for a in (2 * math.pi * k / frames for k in range(frames))
    ]
    c2w = torch.stack(poses).to(reference.c2w)
    one = torch.ones(frames, dtype=c2w.dtype, device=c2w.device)
    return Cameras(
        c2w,
        one * reference.fx[0],
        one * reference.fy[0],
        one * reference.cx[0],
        one * reference.cy[0],
        reference.width,
        reference.height,
    )


def orbit_pictures(
    state, reference: Cameras, background, frames: int, chunk: int
) -> list[torch.Tensor]:
    """``frames`` (H, W, 3) pictures in [0, 1] from :func:`orbit_cameras` around ``reference``;
    ``state`` is anything with ``field``, ``grid`` and ``settings`` (a TrainState, a NerfModel)."""
    cams = orbit_cameras(reference, frames)
    return [
        render_view(state, cams, k, background, chunk)["color"].clamp(0, 1) for k in range(frames)
    ]


def write_turntable(
    path: Path, state: TrainState, reference: Cameras, background, frames: int, chunk: int
) -> Path:
    """An animated GIF of the field seen from cameras orbiting the scene."""
    return write_gif(path, orbit_pictures(state, reference, background, frames, chunk))


def write_mesh(path: Path, state: TrainState, resolution: int, level: float) -> tuple[int, int]:
    """The surface where the density crosses ``level``, meshed on ``resolution``^3 points over the
    scene box (dense: a density is not a distance, so the narrow band's bound does not hold).
    Faces point out of the dense region. Returns (vertices, faces); (0, 0) and no file when the
    density never reaches ``level`` (an empty mesh.ply would read as a broken file)."""
    box = state.field.aabb.detach().cpu().tolist()
    device = state.field.aabb.device

    def negative_density(x: torch.Tensor) -> torch.Tensor:
        return -state.field.density(x)

    verts, faces = mesh_field(
        negative_density, box, resolution, -level, device=device, narrow_band=False
    )
    if len(faces):
        save_mesh(verts, faces, path)
    return len(verts), len(faces)
