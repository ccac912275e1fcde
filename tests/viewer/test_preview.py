"""A NeRF's preview while the camera moves: baked once per model, the same picture a little
softer, crop and modes as for the field, much less work per frame."""

import numpy as np
import pytest
import torch

from fields3d.fields import RadianceField
from fields3d.pipelines.nerf.model import NerfModel
from fields3d.render import OccupancyGrid, RenderSettings
from fields3d.viewer.camera import view_camera
from fields3d.viewer.frames import Look, render_frame
from fields3d.viewer.preview import nerf_preview

BOX = [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]


@pytest.fixture(scope="module")
def model() -> NerfModel:
    """A small random field, dense inside a ball of radius 0.6 (the grid marks it)."""
    torch.manual_seed(0)
    field = RadianceField(
        BOX, n_levels=4, log2_hashmap_size=12, base_resolution=4, max_resolution=32, n_hidden=16
    )
    with torch.no_grad():
        field.density_net[-1].bias[0] += 2.0  # opaque enough to see the colours
    grid = OccupancyGrid(BOX, 16)
    grid.mark_sdf(lambda x: x.norm(dim=1) - 0.6)
    return NerfModel(field, grid, RenderSettings(step=0.01), torch.ones(3), 0)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(float) - b.astype(float)) ** 2).mean()
    return float(10 * np.log10(255**2 / max(mse, 1e-12)))


def _cams(side=48):
    return view_camera((1, 0, 0, 0), (0, 0, -3), 0.9, 4, 4).cameras(side)


# PSNR against the field's frame (random field; measured 36.9, 21.3, 31.0, 31.0 dB): depth is
# coloured from its nearest to its farthest value, so small shifts move whole colour bands.
@pytest.mark.parametrize(
    "mode, floor", [("rgb", 30), ("depth", 18), ("normals", 25), ("accumulation", 25)]
)
def test_the_preview_looks_like_the_field(model, mode, floor):
    full = render_frame(model, _cams(), Look(mode=mode))["image"]
    fast = render_frame(model, _cams(), Look(mode=mode), preview=True)["image"]
    assert fast.shape == full.shape == (48, 48, 3)
    assert not np.array_equal(fast, full)  # a different path drew it
    assert _psnr(fast, full) > floor


def test_the_preview_is_baked_once_per_model(model):
    a = nerf_preview(model)
    assert nerf_preview(model) is a
    assert a.field.resolution == 8 * 16 + 1 and a.settings.step >= model.settings.step
    assert a.spec.levels == 1 and max(a.spec.resolution) < 16  # only the occupied cells' box


def test_the_crop_box_hides_the_preview_too(model):
    look = Look(crop=((-1.0, -1.0, -1.0), (0.0, 1.0, 1.0)))  # keep x <= 0: half the ball
    fast = render_frame(model, _cams(), look, preview=True)["image"]
    whole = render_frame(model, _cams(), Look(), preview=True)["image"]
    assert _psnr(fast, render_frame(model, _cams(), look)["image"]) > 25
    covered = (fast < 250).any(axis=2).sum(), (whole < 250).any(axis=2).sum()
    assert 0.3 < covered[0] / covered[1] < 0.7
