"""What an edit leaves behind besides its checkpoint: the localisation (mask and merged grid),
before/after turntables side by side, a picture of the mask and the edited mesh."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ...geometry.marching_cubes import marching_cubes
from ...guidance import SphericalCameras
from ...guidance.attention import record_cross_attention, token_indices
from ...render.volume import RenderSettings
from .._common import write_gif, write_png
from ..generate.outputs import write_colored_mesh
from .config import EditConfig
from .grid import VoxelField
from .localise import back_project, confidence, graph_cut, relevance, seen_change
from .model import EditModel, occupancy_of, render_views, ring_views
from .regularise import correlation
from .source import Source
from .train import EditState

MASK_COLOR = (0.9, 0.15, 0.1)  # the edited region in mask.png
MASK_VIEWS = 4


def has_attention(prior) -> bool:
    """Whether the prior's UNet exposes cross-attention (Stable Diffusion guidance)."""
    return hasattr(prior, "unet") and hasattr(prior, "tokenizer")


@torch.no_grad()
def attention_score(config: EditConfig, state: EditState, source: Source, prior) -> torch.Tensor:
    """``(R, R, R)`` the edit tokens' cross-attention back-projected from ``localise_views``
    views of the edited grid around the object (:mod:`fields3d.pipelines.edit.localise`)."""
    views = ring_views(source.center, source.distance, source.fov, source.up, config.localise_views)
    size = config.render_size
    tokens = token_indices(prior.tokenizer, config.prompt, config.localise_words)
    accum = None
    for k in range(len(views)):
        one = SphericalCameras(
            views.azimuth[k : k + 1],
            views.elevation[k : k + 1],
            views.radius[k : k + 1],
            views.fov[k : k + 1],
            views.center,
            views.up,
        )
        cam = one.to_cameras(size).to(state.background.device)
        picture = render_views(state.edited, cam, state.background, state.render_step)["color"]
        with record_cross_attention(prior.unet, tokens) as recorder:
            prior(picture, one, config.steps or 1, config.steps or 1)
        attention = recorder.maps(size)[:1].mean(1)  # the conditional half; tokens averaged
        accum = back_project(state.edited, cam, attention, state.render_step, accum)
    return relevance(accum)


def localise(config: EditConfig, state: EditState, source: Source, prior):
    """``(mask (R, R, R) bool, info)``: the graph cut of the attention grid (or of the departure
    from the original, for a prior without attention); all True without ``localise``."""
    r = config.resolution
    if not config.localise:
        mask = torch.ones(r, r, r, dtype=torch.bool, device=state.background.device)
        return mask, {"method": "none (localise off): the whole edited grid"}
    views = ring_views(source.center, source.distance, source.fov, source.up, config.localise_views)
    cams = views.to_cameras(config.render_size).to(state.background.device)
    known = confidence(state.original, state.edited, cams, state.render_step)
    if has_attention(prior):
        score, method = attention_score(config, state, source, prior), "cross-attention"
    else:
        score = seen_change(state.original, state.edited, cams, state.background, state.render_step)
        method = "departure from the original (renders)"
    with torch.no_grad():
        density = torch.maximum(state.edited.density_grid(), state.original.density_grid())
    mask = graph_cut(score, density, config.mask_threshold, config.smoothness, known)
    info = {
        "method": method,
        "threshold": config.mask_threshold,
        "smoothness": config.smoothness,
        "views": config.localise_views if method == "cross-attention" else None,
        "fraction": float(mask.float().mean()),
    }
    return mask, info


def model_of(field: VoxelField, source: Source, state: EditState) -> EditModel:
    """``field`` as a model that renders (its occupancy grid, the run's step and background)."""
    step = state.render_step
    return EditModel(
        field,
        occupancy_of(field, step),
        RenderSettings(step=step),
        state.background,
        state.step,
        source.distance,
        source.fov,
        source.up,
    )


def write_turntable(path: Path, before: EditModel, after: EditModel, frames: int, size: int):
    """``frames`` views around the object, the original (left) beside the edit (right)."""
    cams = before.orbit(frames, size)
    pictures = [
        torch.cat([before.render(cams, k)["color"], after.render(cams, k)["color"]], dim=1)
        for k in range(frames)
    ]
    return write_gif(path, pictures)


@torch.no_grad()
def write_mask_picture(path: Path, model: EditModel, mask: torch.Tensor, size: int) -> Path:
    """:data:`MASK_VIEWS` views of the edited object side by side, the edit mask's voxels red and
    the rest a pale grey of their own brightness."""
    field = model.field
    painted = VoxelField(field.aabb.tolist(), field.resolution, device=field.lo.device)
    painted.load_state_dict(field.state_dict())
    grey = field.color_table().mean(-1, keepdim=True).expand(-1, -1, -1, 3) * 0.5 + 0.4
    red = torch.tensor(MASK_COLOR, device=grey.device).expand_as(grey)
    painted.set_grids(field.density_grid(), torch.where(mask[..., None], red, grey))
    view = dataclasses.replace(model, field=painted)
    cams = view.orbit(MASK_VIEWS, size)
    return write_png(path, torch.cat([view.render(cams, k)["color"] for k in range(MASK_VIEWS)], 1))


@torch.no_grad()
def write_mesh(path: Path, field: VoxelField, level: float) -> dict:
    """Marching cubes of the density grid where it crosses ``level`` per object radius, vertex
    colours from the colour grid; the counts (and ``note`` when there is no surface)."""
    volume = field.density_grid() * field.radius
    lo, hi = field.lo.double(), field.hi.double()
    spacing = ((hi - lo) / (field.resolution - 1)).tolist()
    # the negated density, as the generate pipeline meshes it: inside below the level, so the
    # faces wind outward as for a signed distance
    verts, faces = marching_cubes(-volume, -level, origin=lo.tolist(), spacing=spacing)
    info = {"vertices": int(verts.shape[0]), "faces": int(faces.shape[0]), "level": level}
    if not len(faces):
        info["note"] = f"no surface: the density never reaches mesh_level {level:g}"
        return info
    colors = torch.cat([field(v)[1] for v in verts.float().split(1 << 16)])
    colors = (colors.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    write_colored_mesh(path, verts.double().cpu().numpy(), faces.cpu().numpy(), colors)
    return info


@torch.no_grad()
def structure(state: EditState, merged: VoxelField, mask: torch.Tensor) -> dict:
    """How much of the original's structure each grid kept (Pearson correlations of densities)."""
    orig = state.original.density_grid()
    out = {
        "edited_vs_original": float(correlation(orig, state.edited.density_grid())),
        "merged_vs_original": float(correlation(orig, merged.density_grid())),
    }
    if bool((~mask).any()):
        out["merged_vs_original_outside_mask"] = float(
            correlation(orig[~mask], merged.density_grid()[~mask])
        )
    return out
