"""What `fields3d view` opens: a checkpoint `fields3d generate` wrote renders in every mode."""

from pathlib import Path

import numpy as np
import pytest

from fields3d.pipelines.generate import GenerateConfig, generate
from fields3d.viewer.frames import Look, render_frame
from fields3d.viewer.sources import open_source

SPOT = Path(__file__).parents[2] / "assets" / "meshes" / "spot.obj"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    config = GenerateConfig(
        guidance=f"target:{SPOT}",
        output=str(out),
        device="cpu",
        steps=30,
        resolution=32,
        lr=0.03,
        turntable_frames=0,
        mesh_resolution=32,
        eval_views=2,
    )
    generate(config, progress=False)
    return out / "checkpoint.safetensors"


def test_generated_checkpoint_opens_as_a_field(generated):
    source = open_source(generated, "cpu")
    assert source.kind == "nerf" and source.cameras is None
    assert source.box.shape == (2, 3) and np.all(source.box[1] > source.box[0])


@pytest.mark.parametrize("mode", ["rgb", "depth", "normals", "accumulation", "slice"])
def test_generated_checkpoint_renders_in_every_mode(generated, mode):
    source = open_source(generated, "cpu")
    frame = render_frame(source.model, source.model.orbit(1, width=48), Look(mode=mode))
    assert frame["image"].shape == (48, 48, 3) and frame["image"].dtype == np.uint8
    if mode == "rgb":  # the blob grown towards spot covers the middle of a white background
        middle = frame["image"][16:32, 16:32].astype(float)
        assert middle.mean() < 250


def test_a_generated_checkpoint_previews_from_its_field(generated):
    """Its headlight moves with the camera, which a bake does not keep: no bake, the same frame."""
    source = open_source(generated, "cpu")
    cams = source.model.orbit(1, width=32)
    full = render_frame(source.model, cams)["image"]
    assert np.array_equal(render_frame(source.model, cams, preview=True)["image"], full)


def test_a_cropped_generated_checkpoint_keeps_its_headlight(generated):
    """The crop box hides half of a generated object; what is left is lit as before."""
    source = open_source(generated, "cpu")
    cams = source.model.orbit(1, width=48)
    box = source.box
    mid = (box[0] + box[1]) / 2
    whole = render_frame(source.model, cams)["image"].astype(float)
    crop = ((box[0] - 1).tolist(), (box[1] + 1).tolist())  # a box around everything: no change
    same = render_frame(source.model, cams, Look(crop=crop))["image"].astype(float)
    assert np.abs(same - whole).max() <= 1  # lit as without a crop (rounding only)
    half = ((box[0] - 1).tolist(), [float(mid[0]), *(box[1] + 1).tolist()[1:]])
    cut = render_frame(source.model, cams, Look(crop=half))["image"].astype(float)
    covered = (cut < 250).any(axis=2).sum() / max(1, (whole < 250).any(axis=2).sum())
    assert 0.2 < covered < 0.8
