"""The viewer in a real browser: Debian's headless Chromium driven by selenium (nothing is
downloaded: the browser and its driver are the system's, named by path)."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from fields3d.viewer.app import Viewer, free_port
from fields3d.viewer.sources import open_source

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("FIELDS3D_SCREENSHOTS", "/tmp/fields3d-viewer-shots"))

webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and DRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver: sudo apt-get install chromium chromium-driver "
    "(make setup installs them when run as root)",
)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=800,600",
    ):
        options.add_argument(arg)
    options.add_argument("--use-angle=swiftshader")
    options.add_argument("--enable-unsafe-swiftshader")
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    yield driver
    driver.quit()


def _shot(browser, viewer, name: str, until, timeout: float = 60.0) -> np.ndarray:
    """Load the viewer's page and screenshot it until ``until(image)`` holds."""
    from io import BytesIO

    from PIL import Image

    browser.get(viewer.url)
    end = time.monotonic() + timeout
    while True:
        time.sleep(1.0)
        image = np.asarray(Image.open(BytesIO(browser.get_screenshot_as_png())).convert("RGB"))
        if until(image) or time.monotonic() > end:
            break
    SHOTS.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(SHOTS / f"{name}.png")
    return image


def _canvas_centre(image: np.ndarray) -> np.ndarray:
    """The middle of the 3D canvas (the GUI panel takes the right side of the page)."""
    h, w = image.shape[:2]
    return image[h // 3 : 2 * h // 3, w // 6 : w // 2]


def test_a_mesh_is_drawn(browser):
    viewer = Viewer(open_source(ROOT / "assets/meshes/spot.obj"), port=free_port(start=18300))
    try:
        image = _shot(browser, viewer, "mesh", lambda im: _covered(im) > 0.3)
    finally:
        viewer.close()
    assert _covered(image) > 0.3  # the cow covers the middle of the canvas


def _covered(image: np.ndarray) -> float:
    """Fraction of the canvas' middle whose colour differs from the background at its left edge."""
    background = image[image.shape[0] // 2, 5].astype(float)
    diff = np.abs(_canvas_centre(image).astype(float) - background).sum(-1)
    return float((diff > 12).mean())


def test_a_field_is_rendered_into_the_page(browser, ball_field):
    viewer = Viewer(open_source(ball_field, "cpu"), port=free_port(start=18400), max_side=256)
    viewer.background.value = (40, 40, 40)  # a dark background: the grey ball stands out

    def ball_seen(image):
        lit = float((_canvas_centre(image).mean(-1) > 120).mean())
        return 0.1 < lit < 0.9 and image[-30:-10, 100:140].mean() < 70

    try:
        image = _shot(browser, viewer, "field", ball_seen)
        delivered = sum(s.stats.delivered for s in viewer.sessions.values())
    finally:
        viewer.close()
    assert delivered >= 1, viewer.errors
    h = image.shape[0]
    lit = float((_canvas_centre(image).mean(-1) > 120).mean())  # the grey ball
    corner = image[h - 30 : h - 10, 100:140].mean()  # the dark background frame around it
    assert 0.1 < lit < 0.9 and corner < 70, (lit, corner)


def test_a_trained_nerf_is_rendered_into_the_page(browser):
    """The shipped trained NeRF of spot (scripts/make-spot-nerf.py), rendered by our core."""
    nerf = ROOT / "assets/fields/spot-nerf.safetensors"
    viewer = Viewer(open_source(nerf, "cpu"), port=free_port(start=18450), max_side=256)

    held = []

    def sharp(image):  # the full 256-pixel frame arrived and the page has shown it for 2 s
        sides = [s.stats.last_side for s in list(viewer.sessions.values())]
        held.append(_covered(image) > 0.05 and max(sides, default=0) >= 256)
        return held[-3:] == [True] * 3

    try:
        time.sleep(0.5)
        image = _shot(browser, viewer, "nerf", sharp)
        sides = [s.stats.last_side for s in viewer.sessions.values()]
    finally:
        viewer.close()
    assert max(sides, default=0) >= 256, viewer.errors
    assert 0.05 < _covered(image) < 0.9  # the cow, drawn by our renderer, on the white background
