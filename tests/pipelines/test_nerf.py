"""NeRF end to end on a small copy of the shipped scene (quality threshold a broken renderer
fails), resume from a checkpoint, job files, the CLI, and configuration errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from nerf_cases import SCENE, TINY

from fields3d.cli import main
from fields3d.errors import CheckpointError, InputError, ModelNotFound
from fields3d.pipelines.nerf import NerfConfig, load_job, train_nerf
from fields3d.pipelines.nerf.outputs import composite_on
from fields3d.render import psnr
from fields3d.render.datasets import load_scene


def background_psnr() -> float:
    """PSNR of predicting the background everywhere: what an empty (broken) field scores."""
    test = load_scene(SCENE, "test", 4)
    scores = [
        psnr(test.background.expand(*im.shape[:2], 3), composite_on(im, test.background))
        for im in test.images
    ]
    return sum(scores) / len(scores)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nerf")
    torch.set_num_threads(1)
    result = train_nerf(NerfConfig(**TINY, output=str(out), steps=250), progress=False)
    return result, out


def test_tiny_nerf_learns_the_scene(tiny_run):
    result, out = tiny_run
    baseline = background_psnr()
    assert result.steps == 250
    assert result.psnr > 20.0 and result.psnr > baseline + 6, (result.psnr, baseline)
    assert result.ssim > 0.75
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["psnr"] == pytest.approx(result.psnr) and metrics["train_seconds"] > 0
    assert len(metrics["per_view_psnr"]) == metrics["test_views"] == 20
    assert sorted(p.name for p in (out / "test").iterdir()) == sorted(
        f"r_{i}.png" for i in range(20)
    )
    config = json.loads((out / "config.json").read_text())
    assert (
        config["device"] == "cpu" and config["color_layers"] == 1
    )  # the CPU default was filled in


def test_the_density_mesh_covers_the_object(tiny_run, tmp_path):
    from fields3d.geometry.mesh_io import load_mesh
    from fields3d.pipelines.nerf.outputs import write_mesh

    result, _ = tiny_run
    _n_verts, n_faces = write_mesh(tmp_path / "mesh.ply", result.state, 64, 10.0)
    mesh = load_mesh(tmp_path / "mesh.ply")
    assert n_faces == len(mesh.faces) > 1000
    # the scene's cow spans [-1, 1] on its longest side (scripts/make-nerf-scene.py): the mesh must too
    v = np.asarray(mesh.vertices)
    extent = v.max(0) - v.min(0)
    assert 1.6 < extent.max() < 2.4


def test_resume_continues_from_the_checkpoint(tiny_run, tmp_path):
    result, out = tiny_run
    import shutil

    shutil.copy(out / "checkpoint.safetensors", tmp_path / "checkpoint.safetensors")
    resumed = train_nerf(
        NerfConfig(**TINY, output=str(tmp_path), steps=260, resume=True), progress=False
    )
    assert resumed.steps == 260 and resumed.train_seconds >= result.train_seconds
    assert resumed.psnr > result.psnr - 1.0  # continued, not restarted from scratch
    with pytest.raises(CheckpointError, match="was written with other field settings"):
        train_nerf(
            NerfConfig(**{**TINY, "n_levels": 4}, output=str(tmp_path), steps=261, resume=True),
            progress=False,
        )


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(ModelNotFound) as err:
        train_nerf(NerfConfig(**TINY, output=str(tmp_path), steps=1, resume=True), progress=False)
    assert str(err.value) == (
        f"checkpoint not found: {tmp_path / 'checkpoint.safetensors'}; pass the "
        ".safetensors file that `fields3d nerf` wrote"
    )


def test_cli_writes_the_outputs(tmp_path, capsys):
    job = tmp_path / "job.toml"
    job.write_text(
        f'[nerf]\ndata = "{Path(SCENE).resolve()}"\noutput = "{tmp_path / "out"}"\ndownscale = 8\n'
        "samples_per_step = 1024\n"
        "log2_hashmap_size = 12\nn_levels = 4\nturntable_frames = 2\n"
    )
    assert main(["nerf", str(job), "--steps", "3", "--quiet", "--mesh", "24"]) == 0
    printed = capsys.readouterr().out
    assert "psnr" in printed and "3 steps" in printed
    assert (tmp_path / "out" / "turntable.gif").stat().st_size > 0
    assert (tmp_path / "out" / "test" / "r_19.png").exists()
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["mesh"]["level"] == 10.0


def test_a_mesh_level_the_density_never_reaches_writes_no_mesh_and_says_so(tmp_path, capsys):
    """An empty mesh.ply was written with exit 0 (it reads back as a file with no triangles)."""
    job = tmp_path / "job.toml"
    job.write_text(
        f'[nerf]\ndata = "{Path(SCENE).resolve()}"\noutput = "{tmp_path / "out"}"\ndownscale = 8\n'
        "samples_per_step = 1024\nlog2_hashmap_size = 12\nn_levels = 4\nturntable_frames = 0\n"
        "mesh_level = 1e30\n"
    )
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mesh.ply").write_text("an earlier run's mesh")
    assert main(["nerf", str(job), "--steps", "2", "--quiet", "--mesh", "16"]) == 0
    note = (
        "no surface: the density never reaches mesh_level 1e+30 on the 16^3 grid; lower mesh_level or "
        "train longer"
    )
    assert f"mesh        {note}\n" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["mesh"] == {
        "vertices": 0,
        "faces": 0,
        "level": 1e30,
        "note": note,
    }
    assert not (tmp_path / "out" / "mesh.ply").exists()


def test_cli_refuses_a_one_point_mesh_before_training(tmp_path, capsys):
    assert (
        main(
            [
                "nerf",
                "--data",
                SCENE,
                "-o",
                str(tmp_path),
                "--steps",
                "1",
                "--downscale",
                "8",
                "--mesh",
                "1",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err == (
        "error: mesh_resolution must be 0 (no mesh) or an integer from 2 to 2048 "
        "(grid points per axis), got 1\n"
    )
    assert not (tmp_path / "checkpoint.safetensors").exists()


def test_cli_needs_a_job_or_data(capsys):
    assert main(["nerf"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: pass a job file (e.g. scenes/spot.toml) or --data SCENE_FOLDER"
    )


def test_the_shipped_job_file_loads():
    config = load_job("scenes/spot.toml", {"steps": 5})
    assert (
        Path(config.data).resolve() == Path(SCENE).resolve()
        and config.steps == 5
        and config.time_budget == 600
    )
    assert config.output == "out/nerf/spot"  # outputs stay relative to the current folder


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "[nerf]\ndata = 'x'\nspeed = 3\n",
            ": unknown keys speed; known keys: anneal_steps, background_weight, checkpoint_every, ",
        ),
        ("[other]\n", " has no [nerf] table"),
        ("[nerf\n", " is not valid TOML ("),
        ("[nerf]\nsteps = 3\n", " must set data, the scene folder"),
    ],
)
def test_bad_job_files(tmp_path, text, message):
    job = tmp_path / "job.toml"
    job.write_text(text)
    with pytest.raises(InputError) as err:
        load_job(job)
    assert str(err.value).startswith(f"job file {job}{message}")


def test_missing_job_file(tmp_path):
    with pytest.raises(ModelNotFound) as err:
        load_job(tmp_path / "nope.toml")
    assert (
        str(err.value)
        == f"job file not found: {tmp_path / 'nope.toml'}; pass a TOML file with a [nerf] table (see scenes/)"
    )


@pytest.mark.parametrize(
    "change,message",
    [
        (
            dict(steps=None, time_budget=None),
            "set steps or time_budget (or both): training needs a stopping rule",
        ),
        (dict(time_budget=-1.0), "time_budget must be a number of seconds > 0, got -1.0"),
        (
            dict(grid_resolution=30),
            "grid_resolution must be a multiple of 4 from 8 to 512 (occupancy cells per axis), "
            "got 30",
        ),
        (
            dict(grid_resolution=100000),
            "grid_resolution must be a multiple of 4 from 8 to 512 (occupancy cells per "
            "axis), got 100000",
        ),
        (
            dict(grid_resolution=True),
            "grid_resolution must be a multiple of 4 from 8 to 512 (occupancy cells per "
            "axis), got True",
        ),
        (dict(color_net="big"), "color_net must be 'plain', 'cam' or 'mi', got 'big'"),
        (dict(view="rgb"), "view must be 'sh' or 'none', got 'rgb'"),
        (
            dict(samples_per_step=10),
            "samples_per_step must be an integer from 256 to 16777216, got 10",
        ),
        (dict(data=5), "data must be a folder path (a string), got 5"),
        (dict(output=["a"]), "output must be a folder path (a string), got ['a']"),
        (dict(seed=1.5), "seed must be an integer from 0 to 9223372036854775807, got 1.5"),
        (
            dict(seed=2**64),
            "seed must be an integer from 0 to 9223372036854775807, got 18446744073709551616",
        ),
        (dict(n_levels="x"), "n_levels must be an integer >= 1, got 'x'"),
        (dict(n_hidden=-4), "n_hidden must be an integer from 1 to 1024, got -4"),
        (dict(n_hidden=100000), "n_hidden must be an integer from 1 to 1024, got 100000"),
        (
            dict(turntable_frames=100000),
            "turntable_frames must be an integer from 0 to 3600, got 100000",
        ),
        (
            dict(eval_chunk=2**40),
            "eval_chunk must be an integer from 1 to 16777216, got 1099511627776",
        ),
        (
            dict(samples_per_step=2**40),
            "samples_per_step must be an integer from 256 to 16777216, got 1099511627776",
        ),
        (dict(color_layers=100000), "color_layers must be an integer from 0 to 8, got 100000"),
        (dict(lr=float("nan")), "lr must be a finite number > 0, got nan"),
        (dict(checkpoint_every="x"), "checkpoint_every must be a finite number > 0, got 'x'"),
        (dict(lr_decay=1.5), "lr_decay must be a number in (0, 1], got 1.5"),
        (
            dict(lr_decay_at=5),
            "lr_decay_at must be a list of fractions of the budget in (0, 1), got 5",
        ),
        (
            dict(lr_decay_at=(0.5, 1.0)),
            "lr_decay_at must be a list of fractions of the budget in (0, 1), got (0.5, 1.0)",
        ),
        (dict(mesh_level="x"), "mesh_level must be a finite number (a density), got 'x'"),
        (
            dict(mesh_resolution=4096),
            "mesh_resolution must be 0 (no mesh) or an integer from 2 to 2048 (grid points per axis), got 4096",
        ),
        (
            dict(mesh_resolution=1),
            "mesh_resolution must be 0 (no mesh) or an integer from 2 to 2048 (grid points per axis), got 1",
        ),
        (
            dict(mesh_resolution=-3),
            "mesh_resolution must be 0 (no mesh) or an integer from 2 to 2048 (grid points per axis), got -3",
        ),
        (
            dict(mesh_resolution=2.5),
            "mesh_resolution must be 0 (no mesh) or an integer from 2 to 2048 (grid points per axis), got 2.5",
        ),
    ],
)
def test_bad_settings(change, message):
    with pytest.raises(InputError) as err:
        NerfConfig(**{"data": SCENE, **change})
    assert str(err.value) == message


@pytest.mark.parametrize("step_size", [1e-12, 1e12])
def test_a_step_size_outside_the_scene_box_is_named(tmp_path, step_size):
    """The marcher refused it at the first step, as 'step must be ... of the grid's extent'."""
    with pytest.raises(InputError) as err:
        train_nerf(
            NerfConfig(**{**TINY, "step_size": step_size}, output=str(tmp_path), steps=1),
            progress=False,
        )
    assert str(err.value) == (
        f"step_size must be from 3e-07 to 3 for this scene (1e-07 to 1 times its box's largest "
        f"side), got {step_size!r}; leave it out for the box's diagonal / 512 (1024 on a GPU)"
    )


def test_a_missing_scene_folder(tmp_path):
    with pytest.raises(ModelNotFound, match="^scene folder not found"):
        train_nerf(NerfConfig(data=str(tmp_path / "none"), steps=1), progress=False)
