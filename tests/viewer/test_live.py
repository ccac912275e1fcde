"""Live training: a short NeRF on the shipped scene served by the viewer while it trains."""

import threading
import time
from pathlib import Path

import pytest
from viewer_client import Client, camera_message

from fields3d.cli import main
from fields3d.pipelines.hooks import TrainingHook
from fields3d.pipelines.models import load_model
from fields3d.pipelines.nerf import NerfConfig, train_nerf
from fields3d.viewer.app import Viewer, free_port
from fields3d.viewer.live import LiveTraining
from fields3d.viewer.sources import Source

SPOT = Path(__file__).resolve().parents[2] / "assets" / "scenes" / "spot"
TINY = {
    "downscale": 4,
    "device": "cpu",
    "n_levels": 4,
    "log2_hashmap_size": 12,
    "max_resolution": 64,
    "n_hidden": 16,
    "grid_resolution": 16,
    "samples_per_step": 4096,
    "turntable_frames": 0,
    "checkpoint_every": 1e9,
}


def _wait(condition, timeout=60.0):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError
        time.sleep(0.05)


def test_live_frames_pause_resume_stop(tmp_path, monkeypatch):
    import fields3d.viewer.app as app

    previews, real = [], app.render_frame

    def recording(model, cameras, look, *, preview=False):
        previews.append(preview)
        return real(model, cameras, look, preview=preview)

    monkeypatch.setattr(app, "render_frame", recording)
    config = NerfConfig(data=str(SPOT), output=str(tmp_path), steps=100_000, **TINY)
    live = LiveTraining()
    viewer = Viewer(Source("nerf", tmp_path / "live"), port=free_port(start=18500), live=live)
    viewer.cap.value = 64
    viewer.preview = 32
    done = {}
    thread = threading.Thread(
        target=lambda: done.setdefault("result", train_nerf(config, False, live))
    )
    thread.start()
    client = Client(viewer.port)
    try:
        client.send(camera_message((0, -4, 1.5), up=(0, 0, 1), width=200, height=200))
        frame = client.frame(timeout=120)  # rendered from a snapshot of the running weights
        assert frame.ndim == 3 and live.snapshots >= 1
        step = live.step_count
        _wait(lambda: live.step_count > step + 3)  # steps advance with a client connected
        assert all(previews)  # while it trains, frames come from the bake
        viewer._set_paused(True)
        time.sleep(0.3)
        paused_at = live.step_count
        time.sleep(1.5)
        assert live.step_count <= paused_at + 1  # paused: the step counter stands still
        _wait(lambda: previews and previews[-1] is False)  # paused: the field's own frame
        viewer._set_paused(False)
        _wait(lambda: live.step_count > paused_at + 2)
        viewer._stop()
        thread.join(120)
    finally:
        client.close()
        live.stop()
        thread.join(120)
        viewer.close()
    result = done["result"]
    assert result.steps < 100_000
    model = load_model(tmp_path / "checkpoint.safetensors", "cpu")  # stop saved a checkpoint
    assert model.step == result.steps


class Counter(TrainingHook):
    def __init__(self, stop_at):
        self.seen, self.stop_at = [], stop_at

    def step(self, step, metrics, snapshot):
        self.seen.append((step, metrics["psnr"]))
        if step == 2:
            model = snapshot()
            assert model.step == 2 and not model.field.training

    def should_stop(self):
        return len(self.seen) >= self.stop_at


def test_the_hook_sees_every_step_and_can_stop(tmp_path):
    config = NerfConfig(data=str(SPOT), output=str(tmp_path), steps=50, **TINY)
    hook = Counter(stop_at=5)
    result = train_nerf(config, False, hook)
    assert [s for s, _ in hook.seen] == [1, 2, 3, 4, 5] and result.steps == 5


def test_nerf_view_on_the_command_line(tmp_path, capsys):
    args = ["nerf", "--data", str(SPOT), "-o", str(tmp_path), "--steps", "3", "--downscale", "4"]
    port = free_port(start=18600)
    assert main([*args, "--device", "cpu", "--view", "--port", str(port), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"open        http://127.0.0.1:{port}" in out and "trained" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["view", "missing.ply"],
            "error: nothing to view at missing.ply: no such file; pass a NeRF",
        ),
        (["view", "README.md"], "error: cannot view README.md: unknown kind .md; pass a NeRF"),
        (
            ["view", "assets", "--port", "0"],
            "error: --port must be an integer from 1 to 65535, got 0",
        ),
    ],
)
def test_view_errors(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(message)


def test_recon_fit_is_served_and_stops_early(tmp_path):
    import numpy as np
    import trimesh

    from fields3d.geometry import sample_mesh
    from fields3d.pipelines.recon import ReconConfig, reconstruct

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    np.savetxt(tmp_path / "scan.xyz", sample_mesh(sphere, 2000, seed=0).points)
    config = ReconConfig(
        tmp_path / "scan.xyz",
        tmp_path / "mesh.ply",
        resolution=32,
        steps=100_000,
        device="cpu",
        picture=False,
    )
    live = LiveTraining()
    viewer = Viewer(Source("sdf", tmp_path / "live"), port=free_port(start=18700), live=live)
    viewer.cap.value = 64
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("r", reconstruct(config, False, live)))
    thread.start()
    client = Client(viewer.port)
    try:
        client.send(camera_message((0, 0, 4), width=100, height=100))
        frame = client.frame(timeout=120)  # a sphere-traced snapshot of the grid being fitted
        h, w = frame.shape[:2]
        assert (255 - frame[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].astype(float)).mean() > 40
        assert viewer.source.box is not None  # from the first snapshot
        _wait(lambda: live.step_count > 3)
        viewer._stop()
        thread.join(120)
    finally:
        client.close()
        live.stop()
        thread.join(120)
        viewer.close()
    fit = done["r"].report["method"]["fit"]
    assert (tmp_path / "mesh.ply").is_file() and (tmp_path / "mesh.field.safetensors").is_file()
    assert 3 < fit["stopped_at"] < 100_000 and fit["steps_run"] == 100_000


def test_generate_is_served_live_and_stops_early(tmp_path, capsys):
    """`fields3d generate --view`: a client gets frames of the running weights, and stop from the
    page ends the run, which still writes its checkpoint."""
    from fields3d.pipelines.generate import GenerateConfig, generate

    mesh = Path(__file__).resolve().parents[2] / "assets" / "meshes" / "spot.obj"
    config = GenerateConfig(
        guidance=f"target:{mesh}",
        output=str(tmp_path),
        device="cpu",
        steps=100_000,
        resolution=32,
        turntable_frames=0,
        mesh_resolution=0,
        eval_views=1,
    )
    live = LiveTraining()
    viewer = Viewer(Source("nerf", tmp_path / "live"), port=free_port(start=18700), live=live)
    viewer.cap.value = 48
    viewer.preview = 24
    done = {}
    thread = threading.Thread(
        target=lambda: done.setdefault("result", generate(config, False, hook=live))
    )
    thread.start()
    client = Client(viewer.port)
    try:
        client.send(camera_message((0, -4, 1.5), up=(0, 0, 1), width=200, height=200))
        frame = client.frame(timeout=120)
        assert frame.ndim == 3 and live.snapshots >= 1 and live.curve[-1][1]["loss"] >= 0
        viewer._stop()
        thread.join(120)
    finally:
        client.close()
        live.stop()
        thread.join(120)
        viewer.close()
    result = done["result"]
    assert 0 < result.steps < 100_000
    assert load_model(tmp_path / "checkpoint.safetensors", "cpu").step == result.steps


def test_generate_view_on_the_command_line(tmp_path, capsys):
    mesh = Path(__file__).resolve().parents[2] / "assets" / "meshes" / "spot.obj"
    job = tmp_path / "job.toml"
    job.write_text(
        f'[generate]\nguidance = "target:{mesh.as_posix()}"\noutput = "{tmp_path.as_posix()}"\n'
        'device = "cpu"\nsteps = 2\nresolution = 32\nturntable_frames = 0\n'
        "mesh_resolution = 0\neval_views = 1\n"
    )
    port = free_port(start=18800)
    assert main(["generate", str(job), "--view", "--port", str(port), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"open        http://127.0.0.1:{port}" in out and "generated   2 steps" in out
