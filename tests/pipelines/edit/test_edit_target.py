"""Editing toward a known change proves the loop: spot (the shipped mesh) as a voxel field, and
target guidance toward the renders of spot with a sphere on its back (the changed mesh,
voxelised at the same resolution, so the body renders exactly as the original's and only the
sphere differs). The sphere appears (the pixels that change in the edit's renders and in the
target's overlap with IoU >= 0.7 over 8 views) while the density outside the changed region keeps
a correlation >= 0.95 with the original; without the regulariser (and without localisation, which
would hide it) the outside drifts measurably more."""

from pathlib import Path

import edit_scenes  # tests/pipelines/edit/edit_scenes.py
import pytest

from fields3d.pipelines.edit import EditConfig, edit, load_edit

R = 32
STEPS = 150
IOU, CORRELATION = 0.7, 0.95


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edit-target")
    source = edit_scenes.spot_source(tmp / "spot.safetensors", R)
    target = edit_scenes.spot_source(tmp / "spot-ball.safetensors", R, with_sphere=True)
    return tmp, source, target


def run(scene, name: str, **settings):
    tmp, source, target = scene
    settings = {"steps": STEPS, **settings}
    config = EditConfig(
        checkpoint=str(source),
        prompt="with a ball on its back",
        guidance=f"target:{target}",
        guidance_options={"supersample": 1},
        output=str(tmp / name),
        device="cpu",
        resolution=R,
        render_size=32,
        lr=0.5,
        distill_steps=0,
        turntable_frames=0,
        mesh_level=0,
        **settings,
    )
    return edit(config, progress=False)


@pytest.fixture(scope="module")
def regularised(scene):
    return run(scene, "regularised", reg_weight=5.0)


def test_the_sphere_appears_and_the_rest_stays(scene, regularised):
    _, _, target_path = scene
    target = load_edit(target_path, "cpu").field
    original = regularised.state.original
    views = edit_scenes.ring(original)
    iou = edit_scenes.changed_pixels_iou(original, regularised.merged, target, views)
    kept = edit_scenes.outside_correlation(original, regularised.merged, target)
    assert iou >= IOU and kept >= CORRELATION, (iou, kept)
    assert regularised.metrics["localise"]["method"] == "departure from the original (renders)"
    assert 0 < regularised.metrics["mask_fraction"] < 0.1


def test_without_the_regulariser_the_outside_drifts(scene, regularised):
    _, _, target_path = scene
    target = load_edit(target_path, "cpu").field
    free = run(scene, "free", reg_weight=0.0, localise=False)
    original = regularised.state.original
    with_reg = edit_scenes.outside_correlation(original, regularised.state.edited, target)
    without = edit_scenes.outside_correlation(original, free.state.edited, target)
    assert with_reg >= CORRELATION and without < with_reg - 0.05, (with_reg, without)
    assert free.metrics["localise"]["method"].startswith("none")
    assert Path(free.paths["checkpoint"]).is_file()


def test_an_edit_that_does_nothing_fails_the_threshold(scene):
    _, _, target_path = scene
    target = load_edit(target_path, "cpu").field
    idle = run(scene, "idle", steps=0)
    original = idle.state.original
    iou = edit_scenes.changed_pixels_iou(original, idle.merged, target, edit_scenes.ring(original))
    assert iou < IOU and idle.metrics["mask_fraction"] == 0.0, iou
