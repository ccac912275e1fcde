"""The learned occupancy (--occupancy learned) in the NeRF pipeline: a short run on the shipped
scene improves PSNR and is recorded; the checkpoint round-trips the network and renders the same
pictures; `fields3d render` and the viewer's frames work on it; resume; exact errors."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from nerf_cases import SCENE
from nerf_cases import TINY as BASE

from fields3d.cli import main
from fields3d.errors import CheckpointError, InputError
from fields3d.pipelines.models import load_model
from fields3d.pipelines.nerf import NerfConfig, load_job, load_nerf, train_nerf
from fields3d.pipelines.nerf.outputs import render_view
from fields3d.render import OccupancyNetwork
from fields3d.viewer.frames import Look, render_frame

TINY = dict(BASE, device="cpu", occupancy="learned")


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("learned")
    first = train_nerf(
        NerfConfig(**TINY, output=str(tmp_path_factory.mktemp("one")), steps=1), progress=False
    )
    result = train_nerf(NerfConfig(**TINY, output=str(out), steps=200), progress=False)
    return first, result, out


def test_a_short_learned_run_improves_psnr_and_skips_space(learned_run):
    first, result, out = learned_run
    assert result.psnr > first.psnr + 10 and result.psnr > 20.0, (first.psnr, result.psnr)
    assert result.state.grid is None and isinstance(result.state.occupancy, OccupancyNetwork)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["occupancy_mode"] == "learned"
    assert 0 < metrics["occupancy"] < 0.5  # the share of probes called occupied
    config = json.loads((out / "config.json").read_text())
    assert (config["occupancy"], config["empty_share"], config["occupancy_subdivide"]) == (
        "learned",
        0.9,
        4,
    )


def test_checkpoint_round_trip_keeps_the_network(learned_run):
    _, result, out = learned_run
    model = load_nerf(out / "checkpoint.safetensors", device="cpu")
    net = result.state.occupancy
    assert model.occupancy.config() == net.config()
    for (name, a), b in zip(model.occupancy.state_dict().items(), net.state_dict().values()):
        assert torch.equal(a, b), name
    cams = model.orbit(2, width=24)
    picture = model.render(cams, 1)["color"]
    ours = render_view(result.state, cams, 1, model.background, 1 << 13)["color"]
    torch.testing.assert_close(picture, ours, rtol=0, atol=0)
    assert model.grid.occupied.any() and model.grid.occupancy_fraction() < 0.6  # derived from it


def test_render_command_and_viewer_frames_on_a_learned_checkpoint(learned_run, tmp_path):
    _, _, out = learned_run
    checkpoint = out / "checkpoint.safetensors"
    code = main(["render", str(checkpoint), "-o", str(tmp_path), "--frames", "2"])
    code = code or main(
        ["render", str(checkpoint), "--width", "24", "--quiet", "-o", str(tmp_path)]
    )
    assert code == 0 and (tmp_path / "turntable.gif").is_file()
    model = load_model(checkpoint, device="cpu")
    cams = model.orbit(1, width=32)
    for preview in (False, True):
        frame = render_frame(model, cams, Look(mode="rgb"), preview=preview)
        assert frame["image"].shape == (32, 32, 3)
        assert (frame["image"] < 250).any(), preview  # the cow, not only the white background


def test_resume_keeps_the_occupancy_and_refuses_the_other(learned_run, tmp_path):
    _, _, out = learned_run
    shutil.copy(out / "checkpoint.safetensors", tmp_path / "checkpoint.safetensors")
    config = NerfConfig(**TINY, output=str(tmp_path), steps=202, resume=True)
    assert train_nerf(config, progress=False).steps == 202
    grid = NerfConfig(**{**TINY, "occupancy": "grid"}, output=str(tmp_path), steps=203, resume=True)
    with pytest.raises(CheckpointError) as err:
        train_nerf(grid, progress=False)
    path = tmp_path / "checkpoint.safetensors"
    saved = load_nerf(path, device="cpu").occupancy.config()
    assert str(err.value) == (
        f"checkpoint {path} was trained with a learned network ({saved}) for occupancy, this run "
        "uses the grid; resume with the occupancy it was trained with (--occupancy), or start "
        "again without --resume"
    )


def test_job_file_and_command_line_set_the_occupancy(tmp_path):
    job = tmp_path / "job.toml"
    settings = {
        **TINY,
        **dict(data=str(Path(SCENE).resolve()), steps=2, output=str(tmp_path)),
        **dict(downscale=10, step_size=0.05, occupancy="grid", empty_share=0.8),
    }
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items() if v is not None]
    job.write_text("[nerf]\n" + "\n".join(lines) + "\n")
    assert (load_job(job).occupancy, load_job(job).empty_share) == ("grid", 0.8)
    assert main(["nerf", str(job), "--occupancy", "learned", "--quiet"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["occupancy_mode"] == "learned"


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(occupancy="dense"), "occupancy must be 'grid' or 'learned', got 'dense'"),
        (
            dict(empty_share=1.0),
            "empty_share must be a number in (0, 1), the share of points the occupancy network "
            "should call empty, got 1.0",
        ),
        (
            dict(occupancy_subdivide=0),
            "occupancy_subdivide must be an integer from 1 to 64, got 0",
        ),
    ],
)
def test_bad_occupancy_values(bad, message):
    with pytest.raises(InputError) as err:
        NerfConfig(data=SCENE, **bad)
    assert str(err.value) == message
