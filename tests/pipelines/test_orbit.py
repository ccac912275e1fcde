"""render_orbit: what it writes (and reports), where by default, its progress callback, its
checks; `fields3d render` on a NeRF and on a reconstructed field is tested with those models
(test_nerf_model.py, test_sdf_model.py)."""

from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from fields3d.errors import InputError
from fields3d.fields.sdf_grid import BandSDFGrid
from fields3d.geometry.pointcloud import Normalization
from fields3d.pipelines.orbit import OrbitResult, render_orbit
from fields3d.pipelines.recon.checkpoint import save_field


@pytest.fixture(scope="module")
def sphere(tmp_path_factory):
    axis = torch.linspace(-1, 1, 33)
    x = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    values = x.norm(dim=-1) - 0.5
    grid = BandSDFGrid.from_coarse(values, values.abs() < 0.15)
    path = tmp_path_factory.mktemp("orbit") / "sphere.field.safetensors"
    return save_field(
        path,
        grid,
        Normalization((0.0, 0.0, 0.0), 1.0),
        SimpleNamespace(method="gridpull", input="s"),
    )


def test_writes_the_frames_and_the_gif_and_reports_them(sphere, tmp_path):
    calls = []
    result = render_orbit(
        sphere,
        tmp_path / "out",
        frames=3,
        width=24,
        device="cpu",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert isinstance(result, OrbitResult)
    assert result.gif == tmp_path / "out" / "turntable.gif"
    assert result.frames_dir == tmp_path / "out" / "orbit"
    assert result.frames == [tmp_path / "out" / "orbit" / f"frame_{k:03d}.png" for k in range(3)]
    assert (result.width, result.height) == (24, 24)
    assert result.subject == "band_sdf_grid field, sphere-traced"
    assert calls == [(1, 3), (2, 3), (3, 3)]
    for path in result.frames:
        with Image.open(path) as frame:
            assert frame.size == (24, 24)
    with Image.open(result.gif) as gif:
        assert gif.size == (24, 24)


def test_default_folder_is_beside_the_checkpoint_and_stale_frames_go(sphere):
    stale = sphere.parent / "render" / "orbit" / "frame_007.png"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"an earlier run's frame")
    result = render_orbit(sphere, frames=1, width=8, device="cpu", progress=False)
    assert result.gif == sphere.parent / "render" / "turntable.gif"
    assert sorted(p.name for p in result.frames_dir.iterdir()) == ["frame_000.png"]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"frames": 0}, "frames must be an integer from 1 to 3600, got 0"),
        ({"width": 100000}, "width must be an integer from 1 to 16384, got 100000"),
    ],
)
def test_settings_are_checked_before_loading(tmp_path, settings, message):
    with pytest.raises(InputError) as err:
        render_orbit(tmp_path / "none.safetensors", **settings)
    assert str(err.value) == message
