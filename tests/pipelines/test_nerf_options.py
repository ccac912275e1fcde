"""The NeRF field options of issue 25 in the pipeline: each trains on the shipped scene, is
recorded in metrics.json and the checkpoint and loads back; the older color_net maps onto them;
few-shot view selection and its regularisers; exact errors for bad values."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from nerf_cases import SCENE
from nerf_cases import TINY as BASE

from fields3d.cli import main
from fields3d.errors import InputError
from fields3d.pipelines.nerf import NerfConfig, load_job, load_nerf, train_nerf
from fields3d.pipelines.nerf.fewshot import (
    AnnealedField,
    anneal_fraction,
    background_loss,
    select_views,
)
from fields3d.pipelines.nerf.outputs import composite_on
from fields3d.render import psnr
from fields3d.render.datasets import load_scene

SHIPPED = "assets/fields/spot-nerf.safetensors"
TINY = dict(BASE, device="cpu")
OPTIONS = {
    "cam": dict(field_modulation="cam"),
    "cam-hash": dict(field_modulation="cam-hash"),
    "mi": dict(mlp="mi", density_layers=2),
    "mi-fewshot": dict(mlp="mi", train_views=16, background_weight=0.1, anneal_steps=50),
}


def background_psnr() -> float:
    """PSNR of the background everywhere, what an untrained (empty) field scores on the test views."""
    test = load_scene(SCENE, "test", 4)
    scores = [
        psnr(test.background.expand(*im.shape[:2], 3), composite_on(im, test.background))
        for im in test.images
    ]
    return sum(scores) / len(scores)


@pytest.fixture(scope="module", params=sorted(OPTIONS))
def option_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    torch.set_num_threads(1)
    config = NerfConfig(**TINY, **OPTIONS[request.param], output=str(out), steps=150)
    return request.param, train_nerf(config, progress=False), out


def test_each_option_trains_and_is_recorded(option_run):
    name, result, out = option_run
    options = OPTIONS[name]
    assert result.steps == 150
    assert result.psnr > background_psnr() + 6 and result.psnr > 20.0, (name, result.psnr)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["field_modulation"] == options.get("field_modulation", "none")
    assert metrics["mlp"] == options.get("mlp", "plain")
    assert metrics["train_views"] == options.get("train_views", 100)
    config = json.loads((out / "config.json").read_text())
    assert {k: config[k] for k in options} == options and config["color_net"] is None


def test_checkpoint_round_trip_keeps_the_option(option_run):
    name, result, out = option_run
    model = load_nerf(out / "checkpoint.safetensors", device="cpu")
    assert model.field.config() == result.state.field.config()
    for key in ("field_modulation", "mlp", "density_layers"):
        assert model.field.config()[key] == OPTIONS[name].get(key, model.field.config()[key])
    x = torch.rand(64, 3) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(64, 3), dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model.field(x, d), result.state.field(x, d), rtol=0, atol=0)


def test_resume_with_the_option(option_run, tmp_path):
    name, _, out = option_run
    shutil.copy(out / "checkpoint.safetensors", tmp_path / "checkpoint.safetensors")
    config = NerfConfig(**TINY, **OPTIONS[name], output=str(tmp_path), steps=152, resume=True)
    assert train_nerf(config, progress=False).steps == 152


def test_the_shipped_checkpoint_written_with_color_net_still_loads():
    model = load_nerf(SHIPPED, device="cpu")
    config = model.field.config()
    assert (config["field_modulation"], config["mlp"], config["density_layers"]) == (
        "none",
        "plain",
        1,
    )
    out = model.render(model.orbit(1, width=24), 0)
    assert out["opacity"].max() > 0.5  # the cow is there: the weights went where they belong


@pytest.mark.parametrize(
    "color_net, expected",
    [("plain", ("none", "plain")), ("cam", ("cam-hash", "plain")), ("mi", ("none", "mi"))],
)
def test_job_files_with_color_net_map_onto_the_options(tmp_path, color_net, expected):
    job = tmp_path / "job.toml"
    job.write_text(f'[nerf]\ndata = "x"\ncolor_net = "{color_net}"\n')
    config = load_job(job)
    assert (config.field_modulation, config.mlp, config.color_net) == (*expected, None)


def test_job_file_and_command_line_set_the_options(tmp_path):
    job = tmp_path / "job.toml"
    settings = {
        **TINY,
        **dict(data=str(Path(SCENE).resolve()), steps=2, output=str(tmp_path)),
        **dict(downscale=10, step_size=0.05),  # 20 x 20 pictures, long steps: seconds to score
    }
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items() if v is not None]
    job.write_text("[nerf]\n" + "\n".join(lines) + '\nfield_modulation = "cam-hash"\n')
    assert load_job(job).field_modulation == "cam-hash"
    code = main(
        ["nerf", str(job), "--field-modulation", "cam", "--mlp", "mi", "--train-views", "8"]
        + ["--quiet"]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["field_modulation"], metrics["mlp"], metrics["train_views"]) == ("cam", "mi", 8)


@pytest.mark.parametrize(
    "bad, message",
    [
        (
            dict(field_modulation="film"),
            "field_modulation must be 'none', 'cam' or 'cam-hash', got 'film'",
        ),
        (dict(mlp="deep"), "mlp must be 'plain' or 'mi', got 'deep'"),
        (
            dict(color_net="cam", mlp="mi"),
            "give field_modulation and mlp, or the older color_net, not both; got "
            "color_net='cam' with field_modulation='none', mlp='mi'",
        ),
        (dict(density_layers=9), "density_layers must be an integer from 1 to 8, got 9"),
        (dict(train_views=0), "train_views must be an integer >= 1, got 0"),
        (dict(anneal_steps=-1), "anneal_steps must be an integer >= 0, got -1"),
        (
            dict(background_weight=-0.5),
            "background_weight must be a finite number >= 0, got -0.5",
        ),
    ],
)
def test_bad_option_values(bad, message):
    with pytest.raises(InputError) as err:
        NerfConfig(data=SCENE, **bad)
    assert str(err.value) == message


def test_more_train_views_than_the_scene_has(tmp_path):
    config = NerfConfig(**TINY, output=str(tmp_path), steps=1, train_views=101)
    with pytest.raises(InputError) as err:
        train_nerf(config, progress=False)
    assert str(err.value) == (
        f"train_views is 101 but {SCENE} has 100 training views; ask for at most 100, or leave "
        "train_views out for all of them"
    )


def test_select_views_spreads_them_evenly():
    scene = load_scene(SCENE, "train", 10)
    few = select_views(scene, 8, SCENE)
    ids = [0, 14, 28, 42, 57, 71, 85, 99]
    assert len(few) == 8 and few.files == tuple(scene.files[i] for i in ids)
    assert torch.equal(few.cameras.c2w, scene.cameras.c2w[ids])
    assert torch.equal(few.images, scene.images[ids])
    assert select_views(scene, None, SCENE) is scene


def test_background_loss_and_annealing():
    opacity = torch.tensor([0.5, 0.2, 1.0])
    alpha = torch.tensor([0.0, 0.0, 1.0])
    assert float(background_loss(opacity, alpha)) == pytest.approx((0.25 + 0.04) / 2)
    assert float(background_loss(opacity, torch.ones(3))) == 0.0
    assert [anneal_fraction(s, 100) for s in (0, 50, 100, 200)] == [0.5, 0.75, 1.0, 1.0]

    class Constant(torch.nn.Module):
        def density(self, x):
            return torch.ones(len(x))

        def forward(self, x, dirs):
            return torch.ones(len(x)), torch.zeros(len(x), 3)

    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    field = AnnealedField(Constant(), aabb, 0.5)
    x = torch.tensor([[0.4, 0.0, 0.0], [0.6, 0.0, 0.0], [0.0, -0.7, 0.1]])
    assert field.density(x).tolist() == [1.0, 0.0, 0.0]
    assert field(x, x)[0].tolist() == [1.0, 0.0, 0.0]
