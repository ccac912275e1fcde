"""Target guidance: the exact denoiser's SDS gradient is a weighted pull toward the target's render
(the identity, checked to float precision); a plain gradient-descent loop on pictures reaches the
target and each broken variant (flipped sign, no weighting, noise not subtracted) does not; the
mesh and checkpoint targets render from the pipeline's cameras; errors with their exact text."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import trimesh

from fields3d.errors import InputError, ModelNotFound
from fields3d.guidance import SphericalCameras, TargetGuidance, create
from fields3d.guidance import sds as sds_module
from fields3d.guidance.target import pull_coefficient, resize

B, SIZE = 4, 32


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    path = tmp_path_factory.mktemp("target") / "box.obj"
    trimesh.creation.box(extents=(1.0, 0.6, 0.4)).export(path)
    return path


def views(n=B, center=(0.0, 0.0, 0.0), radius=2.5, light=None) -> SphericalCameras:
    az = torch.tensor([0.0, 60.0, 150.0, 250.0, 300.0, 20.0])[:n]
    el = torch.tensor([10.0, 30.0, -5.0, 45.0, 0.0, 70.0])[:n]
    return SphericalCameras(
        az, el, torch.full((n,), radius), torch.full((n,), 40.0), center=center, light=light
    )


def test_sds_gradient_is_a_weighted_pull_toward_the_target(box):
    prior = create(f"target:{box}", device="cpu", seed=5)
    cams = views()
    x = torch.rand(B, 3, SIZE, SIZE)
    target, _ = prior.render_target(cams, SIZE)
    out = prior(x, cams, 3, 10)
    t = torch.tensor(out.diagnostics["t"])
    a = prior.sds.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    coefficient = pull_coefficient("sds", a)
    torch.testing.assert_close(coefficient, (a * (1 - a)).sqrt())  # w = 1 - abar
    # w(t) (eps_hat - eps) = w(t) sqrt(abar) / sqrt(1 - abar) (x - x_target), and dL/dx = that / B
    torch.testing.assert_close(out.grad, coefficient * (x - target) / B, rtol=1e-4, atol=1e-6)
    assert out.diagnostics["loss"] == pytest.approx(
        0.5 * float(((coefficient * (x - target)) ** 2).sum()) / B, rel=1e-4
    )
    # at the target itself the pull vanishes (up to the float noise of adding and removing eps)
    assert float(prior(target, cams, 3, 10).grad.abs().max()) < 1e-6


def test_the_identity_holds_for_every_weighting_and_the_coarse_resolution(box):
    cams = views(2)
    x = torch.rand(2, 3, SIZE, SIZE)
    for name in ("uniform", "fantasia3d"):
        prior = create(f"target:{box}", device="cpu", weighting=name)
        out = prior(x, cams, 0, 10)
        a = prior.sds.schedule.alphas_cumprod[torch.tensor(out.diagnostics["t"])].view(-1, 1, 1, 1)
        target, _ = prior.render_target(cams, SIZE)
        expected = pull_coefficient(name, a) * (x - target) / 2
        torch.testing.assert_close(out.grad, expected, rtol=1e-4, atol=1e-5)
    coarse = create(f"target:{box}", device="cpu", resolution=8)
    out = coarse(x, cams, 0, 10)
    assert out.grad.shape == x.shape
    a = coarse.sds.schedule.alphas_cumprod[torch.tensor(out.diagnostics["t"])].view(-1, 1, 1, 1)
    leaf = x.clone().requires_grad_(True)
    z = resize(leaf, 8)
    pull = pull_coefficient("sds", a) * (z - resize(coarse.render_target(cams, SIZE)[0], 8))
    (z * pull.detach()).sum().div(2).backward()
    torch.testing.assert_close(out.grad, leaf.grad, rtol=1e-4, atol=1e-6)


def descend(box, *, weighting="sds", flip=False, steps=30) -> float:
    """Plain gradient descent on B pictures guided toward the box's renders; the RMS error left.

    The step is 2.5 per sample (the returned gradient carries 1/B): with the default weighting the
    pull's coefficient is at most 1/2, so every step contracts the error (by 1 - 2.5 c)."""
    prior = create(f"target:{box}", device="cpu", weighting=weighting, seed=0, supersample=1)
    cams = views()
    target, _ = prior.render_target(cams, SIZE)
    x = torch.full((B, 3, SIZE, SIZE), 0.5, requires_grad=True)
    optimiser = torch.optim.SGD([x], lr=2.5 * B)
    for step in range(steps):
        out = prior(x, cams, step, steps)
        optimiser.zero_grad()
        x.backward(-out.grad if flip else out.grad)
        optimiser.step()
    error = float(((x.detach() - target) ** 2).mean().sqrt())
    return error if math.isfinite(error) else math.inf


def test_the_loop_reaches_the_target_and_broken_loops_do_not(box, monkeypatch):
    threshold = 1e-3
    assert descend(box) < threshold
    assert descend(box, flip=True) > 100 * threshold  # wrong sign: pushed away
    assert descend(box, weighting="uniform") > 100 * threshold  # no weighting: low t overshoots
    with monkeypatch.context() as m:  # noise not subtracted: the residual is eps_hat alone
        m.setattr(sds_module, "noise_residual", lambda predicted, noise: predicted)
        assert descend(box) > 100 * threshold
    assert descend(box) < threshold  # the hook restored


# ---- pictures of the target ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ball(tmp_path_factory):
    """An icosphere of radius 1 around (10, -2, 3), as a mesh and as a recon field checkpoint."""
    from fields3d.fields.sdf_grid import BandSDFGrid
    from fields3d.geometry.pointcloud import Normalization
    from fields3d.pipelines.recon.checkpoint import save_field

    folder = tmp_path_factory.mktemp("ball")
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    mesh.apply_translation([10.0, -2.0, 3.0])
    mesh.export(folder / "ball.ply")
    axis = torch.linspace(-1, 1, 65)
    values = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).norm(dim=-1) - 0.5
    grid = BandSDFGrid.from_coarse(values, values.abs() < 0.1)
    checkpoint = save_field(
        folder / "ball.field.safetensors",
        grid,
        Normalization((10.0, -2.0, 3.0), 2.0),
        SimpleNamespace(method="gridpull", input="ball.ply"),
    )
    return folder / "ball.ply", checkpoint


def test_a_mesh_target_is_seen_from_the_pipeline_cameras(ball):
    prior = TargetGuidance(ball[0], device="cpu")
    assert prior.center == pytest.approx((10.0, -2.0, 3.0), abs=1e-6)
    assert prior.radius == pytest.approx(1.0, abs=1e-6) and prior.up == "y"
    cams = views(3, center=prior.center, radius=4.0)
    color, opacity = prior.render_target(cams, 64)
    assert color.shape == (3, 3, 64, 64) and opacity.shape == (3, 1, 64, 64)
    # the ball's outline: a disc of radius f tan(asin(1 / 4)) pixels in the middle of the picture
    f = 32 / math.tan(math.radians(20))
    disc = math.pi * (f * math.tan(math.asin(0.25))) ** 2
    for k in range(3):
        assert float(opacity[k].sum()) == pytest.approx(disc, rel=0.02)
        ys, xs = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
        w = opacity[k, 0]
        centre = (float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum()))
        assert centre == pytest.approx((32.0, 32.0), abs=0.05)
    # headlight: the middle faces the light, full albedo 0.8; the background is white
    assert color[:, :, 31:33, 31:33].numpy() == pytest.approx(0.8, abs=0.01)
    assert bool((color[:, :, 0, 0] == 1).all())
    # a light behind the ball leaves the middle only the ambient 0.1 of the albedo
    behind = torch.tensor(prior.center) - 3 * (
        cams.positions().float() - torch.tensor(prior.center)
    )
    dark = views(3, center=prior.center, radius=4.0, light=behind)
    assert prior.render_target(dark, 64)[0][:, :, 31:33, 31:33].numpy() == pytest.approx(
        0.08, abs=0.01
    )
    flat = TargetGuidance(ball[0], device="cpu", shading="albedo", color=(0.2, 0.4, 0.6))
    middle = flat.render_target(cams, 64)[0][:, :, 32, 32]
    torch.testing.assert_close(middle, torch.tensor([[0.2, 0.4, 0.6]] * 3))


def test_a_checkpoint_target_renders_like_the_mesh(ball):
    mesh, checkpoint = ball
    from_mesh = TargetGuidance(mesh, device="cpu")
    from_checkpoint = create(f"target:{checkpoint}", device="cpu")
    assert from_checkpoint.center == pytest.approx((10.0, -2.0, 3.0))
    assert from_checkpoint.up == "y" and from_checkpoint.radius == pytest.approx(2.2)
    cams = views(2, center=from_mesh.center, radius=4.0)
    a = from_mesh.render_target(cams, 32)[1] > 0.5
    b = from_checkpoint.render_target(cams, 32)[1] > 0.5
    iou = float((a & b).sum()) / float((a | b).sum())
    assert iou > 0.95
    out = from_checkpoint(torch.rand(2, 3, 32, 32), cams, 0, 10)
    assert out.grad.shape == (2, 3, 32, 32) and bool(torch.isfinite(out.grad).all())


def test_config_lists_the_settings(box):
    prior = create(f"target:{box}", device="cpu", prompt="a box", resolution=16, seed=4)
    config = prior.config()
    assert config["guidance"] == "target" and config["path"] == str(box)
    assert config["prompt"] == "a box" and config["resolution"] == 16 and config["seed"] == 4
    assert config["weighting"] == "sds" and config["t_max_end"] == 0.5


# ---- errors ----------------------------------------------------------------------------------


def test_target_path_errors(tmp_path, box):
    kinds = "a mesh (.ply, .obj, .off, .stl, .glb) or a fields3d checkpoint (.safetensors)"
    missing = tmp_path / "nope.obj"
    with pytest.raises(ModelNotFound) as e:
        create(f"target:{missing}")
    assert str(e.value) == f"target not found: {missing}; pass {kinds} as target:PATH"
    with pytest.raises(InputError) as e:
        create(f"target:{tmp_path}")
    assert str(e.value) == f"target {tmp_path} is a folder, not {kinds}"
    notes = tmp_path / "notes.txt"
    notes.write_text("hello", encoding="utf-8")
    with pytest.raises(InputError) as e:
        create(f"target:{notes}")
    assert str(e.value) == f"target {notes} is a .txt file, not {kinds}"
    with pytest.raises(InputError) as e:
        create("target:")
    assert str(e.value) == (
        "guidance 'target:' has an empty path after ':'; write target:MESH_OR_CHECKPOINT"
    )
    with pytest.raises(InputError) as e:
        create("target")
    assert str(e.value) == "guidance 'target' needs 'path' (write target:MESH_OR_CHECKPOINT)"


def test_renders_the_target_cannot_take(box):
    prior = create(f"target:{box}", device="cpu")
    with pytest.raises(InputError) as e:
        prior(torch.rand(1, 3, 16, 24), views(1), 0, 10)
    assert str(e.value) == (
        "target guidance takes square renders (the cameras' pictures are square), got 24x16"
    )
    with pytest.raises(InputError) as e:
        prior(torch.rand(1, 4, 16, 16), views(1), 0, 10)
    assert str(e.value) == (
        "target guidance takes RGB renders of shape (B, 3, H, W), got (1, 4, 16, 16)"
    )
    with pytest.raises(InputError) as e:
        prior(torch.rand(2, 3, 16, 16), views(1), 0, 10)
    assert str(e.value) == (
        "renders and cameras must hold the same number of views (>= 1), got 2 renders and 1 cameras"
    )
    with pytest.raises(InputError) as e:
        prior(torch.rand(1, 3, 16, 16), views(1), 11, 10)
    assert str(e.value) == "step must be an integer from 0 to 10, got 11"
    assert np.isfinite(prior.radius)
