"""load_nerf: a trained NeRF rendered from its checkpoint alone, as training scored it; its errors."""

import json

import numpy as np
import pytest
import torch
from nerf_cases import SCENE, TINIER
from PIL import Image

from fields3d.checkpoint import load_checkpoint, save_checkpoint
from fields3d.cli import main
from fields3d.errors import CheckpointError, InputError, ModelNotFound
from fields3d.pipelines.models import load_model
from fields3d.pipelines.nerf import NerfConfig, NerfModel, load_nerf, train_nerf
from fields3d.pipelines.nerf.outputs import composite_on, render_view
from fields3d.render import psnr
from fields3d.render.datasets import load_scene

TINY = TINIER


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("nerf-model")
    torch.set_num_threads(1)
    result = train_nerf(NerfConfig(**TINY, output=str(out), steps=40), progress=False)
    return result, out


def test_loaded_model_renders_the_test_views_as_training_scored_them(trained):
    result, out = trained
    model = load_nerf(out / "checkpoint.safetensors", device="cpu")
    assert (
        isinstance(model, NerfModel)
        and model.step == result.steps == 40
        and not model.field.training
    )
    assert isinstance(load_model(out / "checkpoint.safetensors", device="cpu"), NerfModel)
    test = load_scene(SCENE, "test", 8)
    assert torch.equal(model.background, test.background)
    train = load_scene(SCENE, "train", 8).cameras
    assert (model.cameras.width, model.cameras.height) == (train.width, train.height)
    for name in ("c2w", "fx", "fy", "cx", "cy"):
        assert torch.equal(getattr(model.cameras, name), getattr(train, name))
    per_view = json.loads((out / "metrics.json").read_text())["per_view_psnr"]
    for i in (0, 7):
        picture = model.render(test.cameras, i)
        assert picture["color"].shape == (test.cameras.height, test.cameras.width, 3)
        assert torch.equal(
            picture["color"],
            render_view(result.state, test.cameras, i, test.background, 1 << 13)["color"],
        )
        score = psnr(picture["color"].clamp(0, 1), composite_on(test.images[i], test.background))
        assert score == pytest.approx(per_view[i], abs=1e-4)


def test_render_on_another_background(trained):
    _, out = trained
    model = load_nerf(out / "checkpoint.safetensors", device="cpu")
    cams = load_scene(SCENE, "test", 8).cameras
    white, black = model.render(cams, 3), model.render(cams, 3, background=0.0)
    assert (white["opacity"] < 0.5).any()  # some of the picture is background
    torch.testing.assert_close(black["color"] + (1 - black["opacity"])[..., None], white["color"])


def test_a_checkpoint_without_background_and_cameras_renders_on_white(trained, tmp_path):
    _, out = trained
    tensors, meta = load_checkpoint(out / "checkpoint.safetensors")
    meta.pop("background"), meta.pop("picture_size")
    save_checkpoint(
        tmp_path / "old.safetensors",
        {k: v for k, v in tensors.items() if not k.startswith("cameras.")},
        meta,
    )
    old = load_nerf(tmp_path / "old.safetensors", device="cpu")
    assert old.background.tolist() == [1.0, 1.0, 1.0] and old.cameras is None
    cams = load_scene(SCENE, "test", 8).cameras
    white, black = old.render(cams, 3, background=1.0), old.render(cams, 3, background=0.0)
    assert torch.equal(old.render(cams, 3)["color"], white["color"])
    assert not torch.equal(white["color"], black["color"])


def test_orbit_keeps_the_training_pictures_aspect(trained):
    _, out = trained
    model = load_nerf(out / "checkpoint.safetensors", device="cpu")
    model.cameras = model.cameras.resized(40, 20)
    assert (model.orbit(3).width, model.orbit(3).height) == (40, 20)
    cams = model.orbit(3, width=30)
    assert len(cams) == 3 and (cams.width, cams.height) == (30, 15)
    radius = model.cameras.c2w[:, :2, 3].norm(dim=1).mean()
    torch.testing.assert_close(cams.c2w[:, :2, 3].norm(dim=1), radius.expand(3))


def test_render_arguments_are_checked(trained):
    _, out = trained
    model = load_nerf(out / "checkpoint.safetensors", device="cpu")
    cams = load_scene(SCENE, "test", 8).cameras
    with pytest.raises(InputError) as err:
        model.render(cams, 20)
    assert str(err.value) == "index must be an integer in [0, 19], got 20"
    with pytest.raises(InputError) as err:
        model.render(cams.c2w, 0)
    assert str(err.value) == "cameras must be a Cameras, got Tensor"
    with pytest.raises(InputError) as err:
        model.render(cams, 0, background="red")
    assert (
        str(err.value)
        == "background must be a number or three numbers in [0, 1] (a list or a (3,) tensor), got 'red'"
    )
    torch.testing.assert_close(
        model.render(cams, 0, background=torch.zeros(3))["color"],
        model.render(cams, 0, background=0.0)["color"],
    )


def test_missing_wrong_and_incomplete_checkpoints(trained, tmp_path):
    with pytest.raises(ModelNotFound) as err:
        load_nerf(tmp_path / "none.safetensors")
    assert str(err.value) == (
        f"checkpoint not found: {tmp_path / 'none.safetensors'}; pass the .safetensors file "
        "that `fields3d nerf` wrote"
    )
    other = save_checkpoint(
        tmp_path / "sdf.safetensors", {"values": torch.zeros(2)}, {"kind": "band_sdf_grid"}
    )
    with pytest.raises(CheckpointError) as err:
        load_nerf(other)
    assert str(err.value) == f"checkpoint {other} holds a 'band_sdf_grid', expected one of 'nerf'"
    tensors, meta = load_checkpoint(trained[1] / "checkpoint.safetensors")
    no_grid = save_checkpoint(
        tmp_path / "no-grid.safetensors",
        {k: v for k, v in tensors.items() if not k.startswith("grid.")},
        meta,
    )
    with pytest.raises(CheckpointError) as err:
        load_nerf(no_grid)
    assert str(err.value).startswith(
        f"checkpoint {no_grid} does not hold a complete NeRF (RuntimeError: "
    )
    assert "Missing key(s) in state_dict" in str(err.value) and "\n" not in str(err.value)
    bad_bg = save_checkpoint(
        tmp_path / "bg.safetensors", tensors, {**meta, "background": [1.0, 1.0]}
    )
    with pytest.raises(CheckpointError) as err:
        load_nerf(bad_bg)
    assert str(err.value) == (
        f"checkpoint {bad_bg} does not hold a complete NeRF (InputError: background must be a "
        "number or three numbers in [0, 1] (a list or a (3,) tensor), got [1.0, 1.0]); train it "
        "again with `fields3d nerf`"
    )
    for size in ([25], [100000, 100000], [0, 25], [25.0, 25], "25x25"):
        bad_size = save_checkpoint(
            tmp_path / "size.safetensors", tensors, {**meta, "picture_size": size}
        )
        with pytest.raises(CheckpointError) as err:
            load_nerf(bad_size)
        assert str(err.value) == (
            f"checkpoint {bad_size} holds a bad picture_size {size!r}: expected [width, height], "
            "two integers from 1 to 16384; train it again with `fields3d nerf`"
        )
    partial = save_checkpoint(
        tmp_path / "partial.safetensors", {"values": torch.zeros(2)}, {"kind": "nerf"}
    )
    with pytest.raises(CheckpointError) as err:
        load_nerf(partial)
    assert str(err.value) == (
        f"checkpoint {partial} does not hold a complete NeRF (KeyError: 'field'); "
        "train it again with `fields3d nerf`"
    )


def test_cli_renders_an_orbit(trained, tmp_path, capsys):
    _, out = trained
    assert (
        main(
            [
                "render",
                str(out / "checkpoint.safetensors"),
                "-o",
                str(tmp_path),
                "--frames",
                "3",
                "--width",
                "40",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "rendered    3 views of 40x40 (NeRF after 40 training steps)" in printed
    assert sorted(p.name for p in (tmp_path / "orbit").iterdir()) == [
        "frame_000.png",
        "frame_001.png",
        "frame_002.png",
    ]
    with Image.open(tmp_path / "turntable.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (40, 40)
    with Image.open(tmp_path / "orbit" / "frame_001.png") as frame:
        pixels = np.asarray(frame.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 5  # the object, not a blank background


def test_cli_render_errors(trained, tmp_path, capsys):
    _, out = trained
    assert main(["render", str(out / "checkpoint.safetensors"), "--frames", "0"]) == 2
    assert capsys.readouterr().err == "error: --frames must be an integer from 1 to 3600, got 0\n"
    assert main(["render", str(out / "checkpoint.safetensors"), "--width", "100000"]) == 2
    assert (
        capsys.readouterr().err == "error: --width must be an integer from 1 to 16384, got 100000\n"
    )
    tensors, meta = load_checkpoint(out / "checkpoint.safetensors")
    meta.pop("picture_size")
    old = save_checkpoint(tmp_path / "old.safetensors", tensors, meta)
    assert main(["render", str(old), "-o", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (
        "error: this NeRF checkpoint keeps no training cameras to orbit around (it predates them); train it again "
        "with `fields3d nerf`, or render it from cameras of your own\n"
    )
    huge = save_checkpoint(
        tmp_path / "huge.safetensors", tensors, {**meta, "picture_size": [100000, 100000]}
    )
    assert (
        main(["render", str(huge), "-o", str(tmp_path / "r"), "--frames", "1", "--device", "cpu"])
        == 2
    )
    assert capsys.readouterr().err == (
        f"error: checkpoint {huge} holds a bad picture_size [100000, 100000]: expected [width, height], two integers "
        "from 1 to 16384; train it again with `fields3d nerf`\n"
    )


def test_a_nerf_checkpoint_with_nan_weights_is_refused(trained, tmp_path, capsys):
    _, out = trained
    tensors, meta = load_checkpoint(out / "checkpoint.safetensors")
    tensors["field.encoding.params"] = torch.full_like(
        tensors["field.encoding.params"], float("nan")
    )
    path = save_checkpoint(tmp_path / "checkpoint.safetensors", tensors, meta)
    message = (
        f"checkpoint {path} holds NaN or infinite values in field.encoding.params; it was saved from a "
        "diverged run: train it again"
    )
    with pytest.raises(CheckpointError) as err:
        load_nerf(path)
    assert str(err.value) == message
    with pytest.raises(CheckpointError) as err:  # resuming from it too
        train_nerf(NerfConfig(**TINY, output=str(tmp_path), steps=41, resume=True), progress=False)
    assert str(err.value) == message


def test_resume_from_a_checkpoint_without_its_grid_says_so(trained, tmp_path):
    _, out = trained
    tensors, meta = load_checkpoint(out / "checkpoint.safetensors")
    path = save_checkpoint(
        tmp_path / "checkpoint.safetensors",
        {k: v for k, v in tensors.items() if not k.startswith("grid.")},
        meta,
    )
    with pytest.raises(CheckpointError) as err:
        train_nerf(NerfConfig(**TINY, output=str(tmp_path), steps=41, resume=True), progress=False)
    assert str(err.value).startswith(
        f"checkpoint {path} does not hold a complete NeRF (RuntimeError: "
    )
    assert "\n" not in str(err.value) and "\t" not in str(
        err.value
    )  # torch's list of problems, on one line
    assert str(err.value).endswith("start again without --resume")


BAD_COUNTERS = [
    ("step", -1, "an integer from 0 to 4611686018427387904"),
    ("step", 1.5, "an integer from 0 to 4611686018427387904"),
    ("seconds", float("nan"), "a finite number >= 0"),
    ("n_rays", 10**9, "an integer from 256 to 65536"),
    ("render_step", 0, "a number from 1e-07 to 1 times the scene box's extent (3)"),
    ("render_step", 1e300, "a number from 1e-07 to 1 times the scene box's extent (3)"),
    ("render_step", "x", "a number from 1e-07 to 1 times the scene box's extent (3)"),
    ("config.samples_per_step", 10**30, "an integer from 256 to 16777216"),
    ("config.samples_per_step", 2.5, "an integer from 256 to 16777216"),
    ("history", [[1, 2]], "a list of [step, seconds, psnr] number triples"),
]


@pytest.mark.parametrize("key, value, expected", BAD_COUNTERS)
def test_a_checkpoint_with_bad_counters_is_refused_by_load_and_resume(
    trained, tmp_path, key, value, expected
):
    """Each used to fail later (at render time, with the render op's message, which does not name
    the checkpoint) or to render and resume with garbage counters."""
    _result, out = trained
    tensors, meta = load_checkpoint(out / "checkpoint.safetensors")
    meta = json.loads(json.dumps(meta))
    if key.startswith("config."):
        meta["config"][key.split(".")[1]] = value
    else:
        meta[key] = value
    bad = save_checkpoint(tmp_path / "bad.safetensors", tensors, meta)
    message = (
        f"checkpoint {bad} holds a bad {key} {value!r}: expected {expected}; "
        "train it again with `fields3d nerf`"
    )
    with pytest.raises(CheckpointError) as err:
        load_nerf(bad, device="cpu")
    assert str(err.value) == message
    resume_out = tmp_path / "resume"
    resume_out.mkdir()
    (resume_out / "checkpoint.safetensors").write_bytes(bad.read_bytes())
    with pytest.raises(CheckpointError) as err:
        train_nerf(
            NerfConfig(**TINY, output=str(resume_out), steps=41, resume=True), progress=False
        )
    assert str(err.value) == message.replace(str(bad), str(resume_out / "checkpoint.safetensors"))
