"""The viewer's server in-process: a websocket client speaking viser's protocol sets a camera and
receives the frames our core renders for it."""

import time

import numpy as np
import pytest
from viewer_client import Client, camera_message

from fields3d.viewer.app import Viewer, box_edges, free_port
from fields3d.viewer.sources import open_source


@pytest.fixture
def viewer(ball_field):
    v = Viewer(open_source(ball_field, "cpu"), port=free_port("127.0.0.1", 18080), max_side=96)
    v.preview = 32
    yield v
    v.close()


def _object_differs(image: np.ndarray) -> tuple[float, float]:
    """Mean difference from white in the centre and in the corners."""
    h, w = image.shape[:2]
    diff = 255 - image.astype(np.float64)
    centre = diff[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].mean()
    corners = np.mean([diff[:4, :4].mean(), diff[-4:, -4:].mean()])
    return centre, corners


def test_a_client_gets_a_frame_of_its_camera(viewer):
    client = Client(viewer.port)
    try:
        client.send(camera_message((0, 0, 4), width=400, height=200))
        image = client.frame(min_side=96)
    finally:
        client.close()
    assert image.shape == (48, 96, 3)  # the canvas' aspect, the resolution cap
    centre, corners = _object_differs(image)
    assert centre > 40 and corners < 5


def test_progressive_preview_then_full(viewer):
    client = Client(viewer.port)
    try:
        client.send(camera_message((0, 0, 4), width=300, height=300))
        sides = []
        for image in client.frames(timeout=30):
            sides.append(image.shape[0])
            if image.shape[0] == 96:
                break
    finally:
        client.close()
    assert sides[0] == 32 and sides[-1] == 96


def test_moving_frames_are_previews_and_the_resting_one_is_not(viewer, monkeypatch):
    import fields3d.viewer.app as app

    seen, real = [], app.render_frame

    def recording(model, cameras, look, *, preview=False):
        seen.append((cameras.width, preview))
        return real(model, cameras, look, preview=preview)

    monkeypatch.setattr(app, "render_frame", recording)
    client = Client(viewer.port)
    try:
        client.send(camera_message((0, 0, 4), width=300, height=300))
        for image in client.frames(timeout=30):
            if image.shape[0] == 96:
                break
    finally:
        client.close()
    assert seen[0] == (32, True) and seen[-1] == (96, False)


def test_two_clients_get_their_own_frames(viewer):
    a, b = Client(viewer.port), Client(viewer.port)
    try:
        a.send(camera_message((0, 0, 4), width=200, height=200))  # the ball in the middle
        b.send(camera_message((0, 0, 4), look_at=(3, 0, 0), width=200, height=100))  # beside it
        frame_a, frame_b = a.frame(min_side=96), b.frame(min_side=96)
    finally:
        a.close()
        b.close()
    assert frame_a.shape == (96, 96, 3) and frame_b.shape == (48, 96, 3)
    assert _object_differs(frame_a)[0] > 40
    assert _object_differs(frame_b)[0] < 5  # looking away: background only


def test_disconnect_mid_render_and_garbage_leave_the_server_working(viewer):
    for _ in range(3):  # tabs closed right after asking for a frame
        c = Client(viewer.port)
        c.send(camera_message((0, 0, 4), width=1000, height=1000))
        c.close()
    bad = Client(viewer.port)
    bad.send_raw(b"\x00garbage\xff")  # not msgpack: viser drops this connection
    bad.close()
    absurd = Client(viewer.port)
    absurd.send(camera_message((0, 0, 4), width=10**9, height=1))  # capped, not rendered as sent
    image = absurd.frame(min_side=96)
    assert image.shape == (1, 96, 3)
    nan = camera_message((0, 0, 4))
    nan["position"] = [float("nan"), 0.0, 0.0]
    absurd.send(nan)  # refused: the last good view stays
    absurd.close()
    good = Client(viewer.port)
    try:
        good.send(camera_message((0, 0, 4), width=100, height=100))
        assert _object_differs(good.frame(min_side=96))[0] > 40
    finally:
        good.close()
    end = time.monotonic() + 10
    while not any("position" in e for e in viewer.errors) and time.monotonic() < end:
        time.sleep(0.1)
    assert any("position must be 3 finite numbers" in e for e in viewer.errors)


def test_screenshot_and_mesh_are_saved_beside_the_checkpoint(viewer, ball_field):
    client = Client(viewer.port)
    try:
        client.send(camera_message((0, 0, 4), width=100, height=100))
        client.frame(min_side=96)
        handle = next(iter(viewer.server.get_clients().values()))
        png = viewer._save_screenshot(handle)
        viewer.mesh_resolution.value = 32
        ply = viewer._extract_mesh()
    finally:
        client.close()
    assert png.parent == ball_field.parent and png.name == "ball-view-000.png"
    assert ply.parent == ball_field.parent and ply.name == "ball-mesh-32-000.ply"
    from fields3d.geometry import load_mesh

    mesh = load_mesh(ply)
    assert abs(np.linalg.norm(mesh.vertices, axis=1).mean() - 1.0) < 0.05  # the ball, radius 1


def test_box_edges():
    edges = box_edges(np.array([[0, 0, 0], [1, 2, 3]]))
    assert edges.shape == (12, 2, 3)
    lengths = sorted(np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1).round(6).tolist())
    assert lengths == [1.0] * 4 + [2.0] * 4 + [3.0] * 4


def test_fields3d_view_serves_until_ctrl_c(tmp_path):
    import signal
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    spot = Path(__file__).resolve().parents[2] / "assets" / "meshes" / "spot.obj"
    port = free_port("127.0.0.1", 18900)
    child = subprocess.Popen(
        [sys.executable, "-m", "fields3d", "view", str(spot), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        line = ""
        while "open " not in line:
            line = child.stdout.readline()
            assert line, "the command ended before printing the URL"
        assert f"http://127.0.0.1:{port}" in line
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).status == 200
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=30) == 0  # Ctrl-C: a clean exit
    finally:
        if child.poll() is None:
            child.kill()
