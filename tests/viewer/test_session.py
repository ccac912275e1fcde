"""The render/session layer without a server: camera conversion, progressive refinement, stale
frames dropped, errors survived."""

import math
import threading
import time

import numpy as np
import pytest

from fields3d.errors import InputError
from fields3d.viewer.camera import view_camera
from fields3d.viewer.session import RenderSession


def test_view_camera_converts_opencv_to_opengl():
    view = view_camera((1, 0, 0, 0), (1, 2, 3), math.radians(60), 400, 200)
    cams = view.cameras(100)
    assert (cams.width, cams.height) == (100, 50)
    assert cams.c2w[0, :3, 3].tolist() == [1.0, 2.0, 3.0]
    assert cams.c2w[0, :3, 1].tolist() == [0.0, -1.0, 0.0]  # OpenCV's +y down -> our +y up
    assert float(cams.fy[0]) == pytest.approx(25 / math.tan(math.radians(30)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (((0, 0, 0, 0), (0, 0, 0), 1.0, 10, 10), "wxyz must be a non-zero quaternion"),
        (((1, 0, 0, 0), (0, float("inf"), 0), 1.0, 10, 10), "position must be 3 finite numbers"),
        (
            ((1, 0, 0, 0), (0, 0, 0), 4.0, 10, 10),
            "fov must be a number of radians in (0, pi), got 4.0",
        ),
        (
            ((1, 0, 0, 0), (0, 0, 0), 1.0, 0, 10),
            "the canvas width must be a number >= 1 pixel, got 0",
        ),
        (((1, 0), (0, 0, 0), 1.0, 10, 10), "wxyz must be 4 finite numbers, got (1, 0)"),
    ],
)
def test_view_camera_refuses_garbage(args, message):
    with pytest.raises(InputError) as info:
        view_camera(*args)
    assert str(info.value).startswith(message)


def test_resolution_cap_bounds():
    view = view_camera((1, 0, 0, 0), (0, 0, 0), 1.0, 10, 10)
    with pytest.raises(InputError, match="the resolution cap must be an integer from 8 to 4096"):
        view.cameras(10**6)


class Slow:
    """A renderer that takes ``seconds`` and records the sides it rendered."""

    def __init__(self, seconds=0.05):
        self.seconds, self.sides, self.delivered = seconds, [], []
        self.gate = threading.Event()
        self.gate.set()

    def render(self, request, side):
        self.gate.wait(10)
        time.sleep(self.seconds)
        self.sides.append(side)
        return {"image": np.zeros((side, side, 3), np.uint8), "version": request.version}

    def deliver(self, frame, request):
        self.delivered.append((frame["version"], frame["image"].shape[0]))


def _view():
    return view_camera((1, 0, 0, 0), (0, 0, 0), 1.0, 10, 10)


def test_preview_while_moving_then_full_at_rest():
    r = Slow()
    s = RenderSession(r.render, r.deliver, preview=16, settle=0.2)
    try:
        s.submit(_view(), None, 64)
        assert s.wait_idle(10)
    finally:
        s.close()
    assert r.delivered == [(1, 16), (1, 64)]


def test_resend_delivers_the_last_frame_again_without_rendering():
    r = Slow()
    s = RenderSession(r.render, r.deliver, preview=16, settle=0.0)
    try:
        s.submit(_view(), None, 64, moving=False)
        assert s.wait_idle(10)
        s.resend()  # a page that dropped the frame gets it again
        assert r.sides == [64] and r.delivered == [(1, 64), (1, 64)]
        s.submit(_view(), None, 32, moving=False)
        assert s.wait_idle(10)
        r.gate.clear()  # the next render waits: resend must not deliver a frame of version 2 ...
        s.submit(_view(), None, 48, moving=False)
        s.resend()  # ... while version 3 is still to come: it asks for a render instead
        r.gate.set()
        assert s.wait_idle(10)
    finally:
        s.close()
    assert r.delivered[-1][1] == 48 and r.delivered[-1][0] >= 3  # the newest camera's frame
    assert r.delivered.count((2, 32)) == 1  # the replaced one was not sent again


def test_frames_of_replaced_cameras_are_dropped():
    r = Slow(seconds=0.2)
    s = RenderSession(r.render, r.deliver, preview=16, settle=0.05)
    try:
        for _ in range(5):  # the camera moves faster than frames render
            s.submit(_view(), None, 64)
            time.sleep(0.03)
        assert s.wait_idle(10)
    finally:
        s.close()
    versions = [v for v, _ in r.delivered]
    assert versions[-1] == 5 and (5, 64) in r.delivered
    assert all(v in (1, 5) for v in versions)  # 2-4 never rendered or dropped, never queued
    assert s.stats.rendered <= 4


def test_a_failing_render_does_not_end_the_session():
    errors = []
    calls = {"n": 0}

    def render(request, side):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return {"image": np.zeros((side, side, 3), np.uint8)}

    delivered = []
    s = RenderSession(
        render, lambda f, r: delivered.append(r.version), settle=0.0, on_error=errors.append
    )
    try:
        s.submit(_view(), None, 32, moving=False)
        time.sleep(0.3)
        s.submit(_view(), None, 32, moving=False)
        assert s.wait_idle(10)
    finally:
        s.close()
    assert [str(e) for e in errors] == ["boom"] and delivered == [2]


def test_close_mid_render_drops_the_frame():
    r = Slow()
    r.gate.clear()
    s = RenderSession(r.render, r.deliver, settle=0.0)
    s.submit(_view(), None, 32, moving=False)
    time.sleep(0.1)
    s.close(timeout=0)
    r.gate.set()
    time.sleep(0.3)
    assert r.delivered == [] and s.stats.dropped == 1
