"""Text-to-3D end to end with a tiny random Stable Diffusion model built in the test (no downloads)
and loaded through the real loading path: gradients reach the hash table, the loss is finite,
the checkpoint, mesh and turntable are written, --resume continues from the saved step exactly
as an uninterrupted run, the same seed gives the same result, `fields3d render` opens the
checkpoint; and the command line's errors, with their exact text and exit status 2."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fields3d.cli import main
from fields3d.errors import InputError
from fields3d.guidance.stable_diffusion import HOW_TO_GET, LAYOUT
from fields3d.pipelines.generate import GenerateConfig, generate, load_job
from fields3d.pipelines.generate import train as train_module
from fields3d.pipelines.models import load_model
from fields3d.pipelines.orbit import render_orbit

pytest.importorskip("diffusers", reason="needs pip install 'fields3d[generate]'")
pytest.importorskip("transformers", reason="needs pip install 'fields3d[generate]'")

sys.path.insert(0, str(Path(__file__).parents[1] / "guidance"))
import tiny_sd  # tests/guidance/tiny_sd.py

ROOT = Path(__file__).parents[2]
SPOT = ROOT / "assets" / "meshes" / "spot.obj"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_sd.build(tmp_path_factory.mktemp("sd") / "tiny-sd")


def tiny_config(model_dir, out, **kw) -> GenerateConfig:
    settings = dict(
        prompt="a ceramic mug",
        model=str(model_dir),
        output=str(out),
        device="cpu",
        steps=3,
        resolution=16,
        grid_resolution=16,
        turntable_frames=2,
        turntable_size=16,
        mesh_resolution=24,
        mesh_level=1.0,
        encoding={"type": "hash_grid", "n_levels": 4, "log2_hashmap_size": 12},
        n_hidden=16,
    )
    return GenerateConfig(**{**settings, **kw})


def test_tiny_stable_diffusion_end_to_end(model_dir, tmp_path, monkeypatch):
    grads = []
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):  # the hash table's gradient at every step
        table = self.param_groups[0]["params"][0]
        grads.append(None if table.grad is None else float(table.grad.abs().sum()))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    result = generate(tiny_config(model_dir, tmp_path / "out"), progress=False)
    assert result.steps == 3 and len(grads) == 3
    assert all(g is not None and g > 0 for g in grads)
    assert result.loss is not None and torch.isfinite(torch.tensor(result.loss))
    out = tmp_path / "out"
    for name in ("checkpoint.safetensors", "turntable.gif", "metrics.json", "config.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["guidance"]["guidance"] == "stable_diffusion"
    assert set(metrics["timings"]) == {"render", "guidance", "backward"}
    assert metrics["mesh"]["faces"] > 0  # the blob at least
    assert (out / "mesh.ply").is_file() and (out / "mesh.glb").is_file()
    assert json.loads((out / "config.json").read_text())["prompt"] == "a ceramic mug"
    model = load_model(out / "checkpoint.safetensors", "cpu")  # what `fields3d render` opens
    assert model.kind == "generate" and model.step == 3
    picture = model.render(model.orbit(1, 12), 0)
    assert picture["color"].shape == (12, 12, 3) and float(picture["opacity"].max()) > 0.5
    orbit = render_orbit(
        out / "checkpoint.safetensors",
        out / "render",
        frames=2,
        width=12,
        device="cpu",
        progress=False,
    )
    assert orbit.gif.is_file() and orbit.subject == "generated object after 3 steps"


def test_resume_continues_and_same_seed_same_result(model_dir, tmp_path):
    def tiny(out, **kw):  # training alone: no turntable, no mesh
        return tiny_config(model_dir, out, turntable_frames=0, mesh_resolution=0, **kw)

    generate(tiny(tmp_path / "whole", steps=4), progress=False)
    generate(tiny(tmp_path / "again", steps=4), progress=False)

    def interrupt(state, loss):  # a run stopped after its checkpoint at step 2
        if state.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(
            tiny(tmp_path / "split", steps=4, checkpoint_every=1e-9),
            progress=False,
            callback=interrupt,
        )
    assert load_model(tmp_path / "split" / "checkpoint.safetensors", "cpu").step == 2
    resumed = generate(tiny(tmp_path / "split", steps=4, resume=True), progress=False)
    assert resumed.steps == 4
    a, b, c = (
        load_file(tmp_path / name / "checkpoint.safetensors")
        for name in ("whole", "again", "split")
    )
    for key in a:
        if key.startswith(("field.", "grid.", "background.")):
            assert torch.equal(a[key], b[key]), key  # same seed, same device
            assert torch.equal(a[key], c[key]), key  # resumed == uninterrupted


def test_cli_runs_a_job_file_with_resume(model_dir, tmp_path, capsys):
    job = tmp_path / "job.toml"
    job.write_text(
        "[generate]\n"
        'prompt = "a ceramic mug"\n'
        f'model = "{model_dir}"\n'
        f'output = "{tmp_path / "cli"}"\n'
        'device = "cpu"\nsteps = 2\nresolution = 16\ngrid_resolution = 16\n'
        "turntable_frames = 1\nturntable_size = 16\nmesh_resolution = 16\nmesh_level = 1.0\n"
        'encoding = {type = "hash_grid", n_levels = 2, log2_hashmap_size = 10}\n',
        encoding="utf-8",
    )
    assert main(["generate", str(job), "--quiet"]) == 0
    assert main(["generate", str(job), "--steps", "3", "--resume", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "generated   2 steps" in out and "generated   3 steps" in out
    assert load_model(tmp_path / "cli" / "checkpoint.safetensors", "cpu").step == 3


def test_job_files_ship():
    mug = load_job(ROOT / "scenes" / "generate-mug.toml")
    assert mug.prompt == "a ceramic mug" and mug.guidance == "stable_diffusion"
    spot = load_job(ROOT / "scenes" / "generate-target-spot.toml")
    assert Path(spot.guidance.removeprefix("target:")).resolve() == SPOT.resolve()


def run_cli(args, capsys):
    code = main(["generate", *args, "--quiet"])
    err = capsys.readouterr().err
    return code, err


def test_errors_exit_2_with_the_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FIELDS3D_SD_MODEL", raising=False)
    missing = tmp_path / "no-model"
    code, err = run_cli(["a mug", "--model", str(missing), "-o", str(tmp_path / "o")], capsys)
    assert code == 2
    assert err == (
        f"error: Stable Diffusion model not found: {missing} does not exist; {LAYOUT}; {HOW_TO_GET}\n"
    )
    code, err = run_cli(["", "-o", str(tmp_path / "o")], capsys)
    assert (code, err) == (
        2,
        "error: prompt must describe what to generate (e.g. 'a ceramic mug'), got ''\n",
    )
    code, err = run_cli(["a mug", "--guidance", "nope", "-o", str(tmp_path / "o")], capsys)
    assert (code, err) == (
        2,
        "error: unknown guidance 'nope'; the known ones are: stable_diffusion[:MODEL_DIR], "
        "target:MESH_OR_CHECKPOINT\n",
    )
    code, err = run_cli(["--guidance", "target:nothing.obj", "-o", str(tmp_path / "o")], capsys)
    assert (code, err) == (
        2,
        "error: target not found: nothing.obj; pass a mesh (.ply, .obj, .off, .stl, .glb) or a "
        "fields3d checkpoint (.safetensors) as target:PATH\n",
    )
    code, err = run_cli(["a mug", "--steps", "0", "-o", str(tmp_path / "o")], capsys)
    assert (code, err) == (2, "error: steps must be an integer >= 1, got 0\n")


def test_config_errors():
    with pytest.raises(InputError, match=r"^radius_range must be two numbers \[low, high\]"):
        GenerateConfig(radius_range=(4.0, 3.0))
    with pytest.raises(InputError, match="^albedo_share \\+ textureless_share must be at most 1"):
        GenerateConfig(albedo_share=0.7, textureless_share=0.5)


def test_random_cameras_respect_ranges():
    scene = train_module.Scene((0.0, 1.0, 0.0), 2.0, "y")
    config = GenerateConfig(front_share=1.0, elevation_range=(0.0, 30.0))
    views = train_module.random_cameras(config, scene, torch.Generator().manual_seed(0), 64)
    assert bool((views.azimuth.abs() < 45).all())  # all front views
    assert bool(((views.elevation >= 0) & (views.elevation <= 30)).all())
    assert bool(((views.radius >= 6.0) & (views.radius <= 7.2)).all())  # 3-3.6 object radii
    assert views.light.shape == (64, 3)


def test_time_budget_stops_the_run(model_dir, tmp_path):
    config = tiny_config(
        model_dir,
        tmp_path / "t",
        steps=None,
        time_budget=0.3,
        turntable_frames=0,
        mesh_resolution=0,
    )
    result = generate(config, progress=False)
    assert result.steps >= 1 and result.train_seconds >= 0.3
    assert result.metrics["settings"]["time_budget"] == 0.3


def test_incomplete_model_folder_exits_2(model_dir, tmp_path, capsys):
    broken = shutil.copytree(model_dir, tmp_path / "broken")
    (broken / "unet" / "config.json").unlink()
    code, err = run_cli(["a mug", "--model", str(broken), "-o", str(tmp_path / "o")], capsys)
    assert code == 2
    assert err == (
        f"error: Stable Diffusion model {broken} is incomplete: it lacks unet/config.json; "
        f"{LAYOUT}; download it again ({HOW_TO_GET})\n"
    )
    assert not (tmp_path / "o" / "checkpoint.safetensors").exists()


def test_latent_field_end_to_end(model_dir, tmp_path, monkeypatch):
    grads = []
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        table = self.param_groups[0]["params"][0]
        grads.append(None if table.grad is None else float(table.grad.abs().sum()))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    out = tmp_path / "latent"
    result = generate(tiny_config(model_dir, out, latent_field=True), progress=False)
    assert result.steps == 3 and all(g is not None and g > 0 for g in grads)
    assert result.loss is not None and torch.isfinite(torch.tensor(result.loss))
    assert result.state.field.channels == 4 and result.state.background.channels == 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["colors"] == "latent" and metrics["guidance"]["latents"] == "direct"
    assert metrics["mesh"]["colors"].startswith("plain grey")
    assert json.loads((out / "config.json").read_text())["latent_field"] is True
    assert (out / "turntable.gif").is_file() and (out / "mesh.ply").is_file()
    model = load_model(out / "checkpoint.safetensors", "cpu")
    assert model.kind == "generate" and model.step == 3 and model.field.channels == 4
    with pytest.raises(InputError, match="^this generated field renders 4 latent colour"):
        model.render(model.orbit(1, 8), 0)


def test_latent_field_needs_stable_diffusion(tmp_path, capsys):
    with pytest.raises(InputError) as info:
        GenerateConfig(guidance=f"target:{SPOT}", latent_field=True)
    assert str(info.value) == (
        "latent_field needs Stable Diffusion guidance (its renders are the model's latents); "
        "target guidance compares RGB pictures"
    )
    code, err = run_cli(
        ["--guidance", f"target:{SPOT}", "--latent-field", "-o", str(tmp_path / "o")], capsys
    )
    assert (code, err) == (2, f"error: {info.value}\n")
