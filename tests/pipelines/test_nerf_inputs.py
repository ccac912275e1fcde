"""Bad NeRF inputs refused before training: test pictures too small for SSIM, a resume on another
scene; and job files, whose scene paths are read from their own folder."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fields3d.checkpoint import load_checkpoint, save_checkpoint
from fields3d.cli import main
from fields3d.errors import CheckpointError, InputError, TrainingDiverged
from fields3d.pipelines._common import resolve_device
from fields3d.pipelines.nerf import NerfConfig, load_job, train_nerf
from fields3d.pipelines.nerf.checkpoint import load_state
from fields3d.pipelines.nerf.train import build_state, scene_record
from fields3d.render.datasets import load_scene

SPOT = Path(__file__).resolve().parents[2] / "assets" / "scenes" / "spot"
TINY = {
    "downscale": 8,
    "samples_per_step": 1024,
    "log2_hashmap_size": 12,
    "n_levels": 4,
    "max_resolution": 64,
    "grid_resolution": 16,
    "turntable_frames": 0,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One training step through the CLI, run from a third folder, of a job file that names its
    scene from its own folder: ``(root, job, checkpoint)``."""
    root = tmp_path_factory.mktemp("inputs")
    shutil.copytree(SPOT, root / "scenes" / "spot")
    job = root / "jobs" / "spot.toml"
    job.parent.mkdir()
    job.write_text(
        '[nerf]\ndata = "../scenes/spot"\noutput = "out"\n'
        + "".join(f"{k} = {v}\n" for k, v in TINY.items())
    )
    elsewhere = root / "a" / "b"  # where "../scenes/spot" does not exist
    elsewhere.mkdir(parents=True)
    here = os.getcwd()
    os.chdir(elsewhere)
    try:
        assert main(["nerf", str(job), "--steps", "1", "--quiet"]) == 0
    finally:
        os.chdir(here)
    return root, job, elsewhere / "out" / "checkpoint.safetensors"


def test_a_job_file_reads_its_scene_from_its_own_folder_and_writes_to_the_current_one(run):
    _root, job, checkpoint = run
    assert checkpoint.is_file()
    config = json.loads((checkpoint.parent / "config.json").read_text())
    assert config["data"] == str(job.parent / "../scenes/spot") and config["output"] == "out"


def test_job_file_paths(tmp_path, monkeypatch):
    (tmp_path / "jobs" / "scene").mkdir(parents=True)
    job = tmp_path / "jobs" / "job.toml"
    monkeypatch.chdir(tmp_path)
    for data, expect in [
        ("scene", str(job.parent / "scene")),  # beside the job file
        ("none", str(job.parent / "none")),  # nowhere: the scene loader says where it looked
        (str(tmp_path / "abs"), str(tmp_path / "abs")),
    ]:
        job.write_text(f'[nerf]\ndata = "{data}"\noutput = "out/x"\n')
        config = load_job(job)
        assert (config.data, config.output) == (expect, "out/x")
    assert load_job(job, {"data": "scene"}).data == "scene"  # --data: from the current folder


def test_test_pictures_smaller_than_the_ssim_window_are_refused_before_training(tmp_path):
    with pytest.raises(InputError) as err:
        train_nerf(
            NerfConfig(data=str(SPOT), output=str(tmp_path), steps=1, **{**TINY, "downscale": 20}),
            progress=False,
        )
    assert str(err.value) == (
        f"the test pictures of {SPOT} are 10x10 pixels (downscale 20); scoring them with SSIM "
        "needs at least 11x11: use a smaller downscale"
    )
    assert not (tmp_path / "checkpoint.safetensors").exists()
    small = tmp_path / "small"
    for split in ("train", "test"):
        Image.new("RGBA", (10, 12), (200, 100, 50, 255)).save(_folder(small / split) / "r_0.png")
        frame = {"file_path": f"./{split}/r_0", "transform_matrix": np.eye(4).tolist()}
        (small / f"transforms_{split}.json").write_text(
            json.dumps({"camera_angle_x": 0.7, "frames": [frame]})
        )
    with pytest.raises(InputError) as err:
        train_nerf(
            NerfConfig(data=str(small), output=str(tmp_path), steps=1, **{**TINY, "downscale": 1}),
            progress=False,
        )
    assert str(err.value) == (
        f"the test pictures of {small} are 10x12 pixels (downscale 1); scoring them with SSIM "
        "needs at least 11x11: use larger pictures"
    )


def test_a_diverged_training_stops_with_a_named_error(tmp_path):
    with pytest.raises(TrainingDiverged) as err:
        train_nerf(
            NerfConfig(data=str(SPOT), output=str(tmp_path), steps=3, lr=1e30, **TINY),
            progress=False,
        )
    assert str(err.value) in (
        f"training diverged: the loss is nan at step {k}; lower the learning rate (lr 1e+30) "
        "and start again"
        for k in (1, 2, 3)
    )
    assert not (tmp_path / "metrics.json").exists()


def test_training_cameras_at_one_point_are_refused_before_training(tmp_path):
    scene = tmp_path / "scene"
    shutil.copytree(SPOT, scene)
    meta = json.loads((scene / "transforms_train.json").read_text())
    for frame in meta["frames"]:
        for row, value in zip(frame["transform_matrix"][:3], (0.0, 0.0, 4.0)):
            row[3] = value
    (scene / "transforms_train.json").write_text(json.dumps(meta))
    with pytest.raises(InputError) as err:
        train_nerf(
            NerfConfig(data=str(scene), output=str(tmp_path / "out"), steps=1, **TINY),
            progress=False,
        )
    assert str(err.value) == (
        f"all 100 training cameras of {scene} sit at one point (0, 0, 4); NeRF needs views "
        "from different places: check the transform_matrix translations"
    )
    assert not (tmp_path / "out").exists()


def test_the_turntable_orbits_cameras_that_sit_on_the_axis():
    from fields3d.pipelines.nerf.outputs import orbit_cameras

    reference = load_scene(SPOT, "test", 8).cameras
    reference.c2w[:, :3, 3] = (
        torch.tensor([0.0, 0.0, 3.0]) * torch.arange(1, 21)[:, None] / 10
    )  # up the z axis
    orbit = orbit_cameras(reference, 4)
    eyes = orbit.c2w[:, :3, 3]
    assert torch.isfinite(orbit.c2w).all() and float(eyes[:, :2].norm(dim=1).min()) > 0.5


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _other_scene(tmp_path: Path, change: str) -> Path:
    other = tmp_path / "other"
    shutil.copytree(SPOT, other)
    if change == "picture":
        with Image.open(other / "train" / "r_0.png") as im:
            im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(other / "train" / "r_0.png")
    else:
        meta = json.loads((other / "transforms_train.json").read_text())
        meta["frames"].pop()
        (other / "transforms_train.json").write_text(json.dumps(meta))
    return other


@pytest.mark.parametrize("change", ["picture", "frames"])
def test_resume_on_another_scene_is_refused_before_training(run, tmp_path, change):
    _, _, checkpoint = run
    shutil.copy(checkpoint, tmp_path / "checkpoint.safetensors")
    other = _other_scene(tmp_path, change)
    old = load_checkpoint(checkpoint)[1]["scene"]
    new = scene_record(load_scene(other, "train", 8), other)
    with pytest.raises(CheckpointError) as err:
        train_nerf(
            NerfConfig(data=str(other), output=str(tmp_path), steps=3, resume=True, **TINY),
            progress=False,
        )
    assert str(err.value) == (
        f"checkpoint {tmp_path / 'checkpoint.safetensors'} was trained on another scene ({old['data']!r}: 100 training "
        f"views, scene hash {old['hash']}; this run: {str(other)!r}: {new['views']} views, scene hash {new['hash']}); "
        "resume with the scene it was trained on, or start again without --resume"
    )
    assert new["views"] == (100 if change == "picture" else 99) and new["hash"] != old["hash"]
    assert load_checkpoint(tmp_path / "checkpoint.safetensors")[1]["step"] == 1  # not trained on


def _state_for(data: Path, downscale: int):
    device = resolve_device("auto")
    config = NerfConfig(data=str(data), steps=2, **{**TINY, "downscale": downscale}).resolved(
        device.type
    )
    return build_state(config, load_scene(data, "train", downscale), device)


def test_resume_takes_the_same_scene_moved_or_downscaled_and_old_checkpoints(run, tmp_path):
    _, _, checkpoint = run
    shutil.copytree(SPOT, tmp_path / "moved")
    state = _state_for(tmp_path / "moved", 4)
    load_state(checkpoint, state)
    assert state.step == 1
    tensors, meta = load_checkpoint(checkpoint)
    meta.pop("scene")  # written before checkpoints recorded their scene: no way to tell, accepted
    old = save_checkpoint(tmp_path / "old.safetensors", tensors, meta)
    state = _state_for(_other_scene(tmp_path, "picture"), 8)
    load_state(old, state)
    assert state.step == 1
