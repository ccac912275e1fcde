"""Editing end to end with a tiny random Stable Diffusion model built in the test (no downloads)
and loaded through the real loading path: a few steps run, the edit is localised by the UNet's
cross-attention, every output is written, the checkpoint opens in `fields3d render` and the
viewer's source loading, and --resume goes on from the saved step exactly as an uninterrupted
run."""

import json
import sys
from pathlib import Path

import edit_scenes  # tests/pipelines/edit/edit_scenes.py
import pytest
import torch

from fields3d.pipelines.edit import EditConfig, EditModel, edit
from fields3d.pipelines.models import load_model
from fields3d.pipelines.orbit import render_orbit
from fields3d.viewer.sources import open_source

pytest.importorskip("diffusers", reason="needs pip install 'fields3d[generate]'")
pytest.importorskip("transformers", reason="needs pip install 'fields3d[generate]'")
pytest.importorskip("maxflow", reason="needs pip install 'fields3d[generate]'")

sys.path.insert(0, str(Path(__file__).parents[2] / "guidance"))
import tiny_sd

R = 16


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edit-sd")
    model = tiny_sd.build(tmp / "tiny-sd")
    source = edit_scenes.spot_source(tmp / "spot.safetensors", R)
    return model, source


def tiny(files, out, **settings) -> EditConfig:
    model, source = files
    values = dict(
        checkpoint=str(source),
        prompt="a party hat",
        localise_words="hat",
        model=str(model),
        output=str(out),
        device="cpu",
        steps=3,
        resolution=R,
        render_size=16,
        distill_steps=2,
        distill_views=2,
        localise_views=2,
        turntable_frames=2,
        turntable_size=16,
    )
    return EditConfig(**{**values, **settings})


def test_tiny_stable_diffusion_end_to_end(files, tmp_path):
    result = edit(tiny(files, tmp_path / "out"), progress=False)
    m = result.metrics
    assert result.steps == 3 and m["localise"]["method"] == "cross-attention"
    assert (
        m["guidance"]["guidance"] == "stable_diffusion" and m["guidance"]["prompt"] == "a party hat"
    )
    assert m["distill"]["psnr"] > 20 and m["distill"]["fit_steps"] == 2
    assert 0 <= m["mask_fraction"] <= 1 and m["mesh"]["faces"] > 0
    for name in ("checkpoint", "turntable", "mask", "mesh", "metrics", "config"):
        assert Path(result.paths[name]).is_file(), name
    assert json.loads(Path(result.paths["metrics"]).read_text())["steps"] == 3
    model = load_model(result.paths["checkpoint"], "cpu")
    assert isinstance(model, EditModel) and model.kind == "edit" and model.step == 3
    orbit = render_orbit(
        result.paths["checkpoint"], frames=2, width=16, device="cpu", progress=False
    )
    assert orbit.subject == "edited object after 3 steps" and len(orbit.frames) == 2
    seen = open_source(result.paths["checkpoint"], "cpu")
    assert seen.kind == "nerf" and seen.box.shape == (2, 3)  # rendered through its grid


class Stop(Exception):
    pass


def stop_at(step: int):
    def callback(state, values):
        if state.step == step:
            raise Stop

    return callback


def test_resume_goes_on_as_an_uninterrupted_run(files, tmp_path):
    settings = dict(steps=4, turntable_frames=0, checkpoint_every=1e-9)  # a checkpoint a step
    whole = edit(tiny(files, tmp_path / "whole", **settings), progress=False)
    with pytest.raises(Stop):
        edit(tiny(files, tmp_path / "parts", **settings), progress=False, callback=stop_at(2))
    resumed = edit(tiny(files, tmp_path / "parts", resume=True, **settings), progress=False)
    assert resumed.steps == 4 and [h[0] for h in resumed.state.history] == [4]
    torch.testing.assert_close(
        resumed.state.edited.density_grid(), whole.state.edited.density_grid()
    )
    assert torch.equal(resumed.mask, whole.mask)
    again = edit(tiny(files, tmp_path / "parts", resume=True, **settings), progress=False)
    assert again.steps == 4 and torch.equal(again.mask, resumed.mask)  # finished: nothing to do
