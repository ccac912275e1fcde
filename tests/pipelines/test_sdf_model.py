"""load_sdf / load_model: a reconstructed field rendered in world units from its checkpoint
(a sphere whose picture is known), dispatch by kind, errors, and `fields3d render` on it."""

import math
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from fields3d.checkpoint import save_checkpoint
from fields3d.cli import main
from fields3d.errors import CheckpointError, InputError, ModelNotFound
from fields3d.fields.sdf_grid import BandSDFGrid
from fields3d.geometry.pointcloud import Normalization
from fields3d.pipelines.models import load_model
from fields3d.pipelines.recon.checkpoint import save_field
from fields3d.pipelines.recon.model import SdfModel, load_sdf

CENTER, SCALE = (
    (10.0, -2.0, 3.0),
    2.0,
)  # the unit sphere of radius 0.5 is a world sphere of radius 1


@pytest.fixture(scope="module")
def sphere(tmp_path_factory):
    res = 65  # odd: the centre is a grid point
    axis = torch.linspace(-1, 1, res)
    x = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    values = x.norm(dim=-1) - 0.5
    grid = BandSDFGrid.from_coarse(values, values.abs() < 0.1)
    path = tmp_path_factory.mktemp("sdf") / "sphere.field.safetensors"
    return save_field(
        path, grid, Normalization(CENTER, SCALE), SimpleNamespace(method="gridpull", input="s.ply")
    )


def test_field_in_world_units(sphere):
    model = load_sdf(sphere, device="cpu")
    assert isinstance(model, SdfModel) and model.kind == "band_sdf_grid"
    pts = torch.tensor([[10.0, -2.0, 3.0], [11.0, -2.0, 3.0], [10.0, -2.0, 4.5]])
    torch.testing.assert_close(model.sdf(pts), torch.tensor([-1.0, 0.0, 0.5]), atol=0.03, rtol=0)
    torch.testing.assert_close(model.aabb(), torch.tensor([[8.0, -4.0, 1.0], [12.0, 0.0, 5.0]]))


def test_the_sphere_renders_at_its_depth_and_size(sphere):
    model = load_model(sphere, device="cpu")
    assert isinstance(model, SdfModel)
    cams = model.orbit(3, 64)
    distance = float(
        (cams.c2w[0, :3, 3].double() - torch.tensor(CENTER, dtype=torch.float64)).norm()
    )
    for k in range(3):
        out = model.render(cams, k)
        assert out["color"].shape == (64, 64, 3) and out["depth"].shape == out["opacity"].shape == (
            64,
            64,
        )
        middle = out["depth"][31:33, 31:33]  # the four pixels around the principal point
        torch.testing.assert_close(
            middle, torch.full_like(middle, distance - 1.0), atol=0.02, rtol=0
        )
        radius = cams.fx[0].item() * math.tan(
            math.asin(1.0 / distance)
        )  # the silhouette's radius, pixels
        assert out["opacity"].sum().item() == pytest.approx(math.pi * radius**2, rel=0.05)
        assert (out["color"][out["opacity"] == 0] == 1.0).all()  # white background


def test_a_field_far_from_the_origin_renders_as_near_it(sphere, tmp_path):
    """A scan in UTM metres (centre 5e6 away, half a metre across): traced in world coordinates, float32
    rays there are 0.5 apart and the picture was a grey block; it is traced around its centre now."""
    near = load_sdf(sphere, device="cpu")
    field = near.field
    far_path = save_field(
        tmp_path / "utm.field.safetensors",
        field,
        Normalization((5e6, 4e6, 100.0), 0.25),
        SimpleNamespace(method="gridpull", input="s.ply"),
    )
    far = load_sdf(far_path, device="cpu")
    small = load_sdf(
        save_field(
            tmp_path / "small.field.safetensors",
            field,
            Normalization((0.0, 0.0, 0.0), 0.25),
            SimpleNamespace(method="gridpull", input="s.ply"),
        ),
        device="cpu",
    )
    cams = far.orbit(2, 48)
    assert cams.c2w.dtype == torch.float64
    for k in range(2):
        a, b = far.render(cams, k), small.render(small.orbit(2, 48), k)
        assert a["opacity"].sum() > 300  # the sphere fills about a third of the picture
        torch.testing.assert_close(a["opacity"], b["opacity"], atol=0, rtol=0)
        torch.testing.assert_close(a["depth"], b["depth"], atol=1e-5, rtol=0)
        torch.testing.assert_close(a["color"], b["color"], atol=1e-3, rtol=0)


def test_load_model_errors(tmp_path):
    with pytest.raises(ModelNotFound) as err:
        load_model(tmp_path / "none.safetensors")
    assert str(err.value) == (
        f"checkpoint not found: {tmp_path / 'none.safetensors'}; pass the .safetensors file "
        "that `fields3d generate`, `fields3d nerf` or `fields3d recon` wrote"
    )
    odd = save_checkpoint(tmp_path / "odd.safetensors", {"x": torch.zeros(1)}, {"kind": "mystery"})
    with pytest.raises(CheckpointError) as err:
        load_model(odd)
    assert (
        str(err.value)
        == f"checkpoint {odd} holds a 'mystery', expected one of 'band_sdf_grid', 'neural_sdf', 'nerf', 'generate'"
    )


def test_cli_renders_a_reconstructed_field(sphere, tmp_path, capsys):
    assert (
        main(
            [
                "render",
                str(sphere),
                "-o",
                str(tmp_path),
                "--frames",
                "2",
                "--width",
                "32",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert (
        "rendered    2 views of 32x32 (band_sdf_grid field, sphere-traced)"
        in capsys.readouterr().out
    )
    assert sorted(p.name for p in (tmp_path / "orbit").iterdir()) == [
        "frame_000.png",
        "frame_001.png",
    ]
    with Image.open(tmp_path / "turntable.gif") as gif:
        assert (
            gif.size == (32, 32) and gif.info["loop"] == 0
        )  # a sphere's frames are alike: PIL may merge them
    (tmp_path / "orbit" / "frame_005.png").write_bytes(b"an earlier run's frame")
    assert (
        main(
            [
                "render",
                str(sphere),
                "-o",
                str(tmp_path),
                "--frames",
                "1",
                "--width",
                "16",
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "orbit").iterdir()) == ["frame_000.png"]


def test_render_colours_are_checked(sphere):
    model = load_sdf(sphere, device="cpu")
    cams = model.orbit(1, 16)
    with pytest.raises(InputError) as err:
        model.render(cams, 0, background=(0.0, 0.0))
    assert str(err.value) == (
        "background must be a number or three numbers in [0, 1] (a list or a (3,) tensor), "
        "got (0.0, 0.0)"
    )
    black = model.render(cams, 0, background=torch.zeros(3))
    assert (black["color"][black["opacity"] == 0] == 0).all()
    with pytest.raises(InputError) as err:
        model.orbit(2, 0)
    assert str(err.value) == "width must be an integer >= 1, got 0"
