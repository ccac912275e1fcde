"""The prior interface: spherical cameras (the same pinhole cameras ring_cameras places), the
registry and spec parsing (as encodings' factory), and that importing fields3d.guidance needs
neither diffusers nor transformers."""

import os
import subprocess
import sys

import pytest
import torch

from fields3d.errors import InputError
from fields3d.guidance import Guidance, SphericalCameras, available, create, parse_spec, register
from fields3d.render.cameras import ring_cameras


def test_spherical_cameras_are_ring_cameras():
    for up in ("y", "z"):
        ring = ring_cameras(
            (1.0, -2.0, 0.5), 3.0, 4, size=64, fov_deg=40.0, elevation_deg=20.0, up=up
        )
        cams = SphericalCameras(
            torch.tensor([0.0, 90.0, 180.0, 270.0]),
            torch.full((4,), 20.0),
            torch.full((4,), 3.0),
            torch.full((4,), 40.0),
            center=(1.0, -2.0, 0.5),
            up=up,
        ).to_cameras(64)
        torch.testing.assert_close(cams.c2w, ring.c2w, atol=1e-6, rtol=0)
        torch.testing.assert_close(cams.fx, ring.fx)
        torch.testing.assert_close(cams.cx, ring.cx)
        assert (cams.width, cams.height) == (64, 64)
    front = SphericalCameras(
        torch.zeros(1), torch.zeros(1), torch.full((1,), 2.0), torch.full((1,), 60.0)
    )
    torch.testing.assert_close(
        front.positions(), torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64)
    )
    assert front.to_cameras(8, torch.float64).c2w.dtype == torch.float64


def test_spherical_camera_errors():
    one = torch.ones(2)
    cases = [
        (
            {"azimuth": [0.0, 1.0]},
            "azimuth must be a float tensor of shape (B,), got list",
        ),
        (
            {"elevation": torch.ones(3)},
            "elevation must be a float tensor of shape (2,) like azimuth, got float32 (3,)",
        ),
        (
            {"elevation": torch.tensor([0.0, 90.0])},
            "elevation[1] must be degrees in (-90, 90), got 90.0",
        ),
        ({"radius": torch.tensor([1.0, 0.0])}, "radius[1] must be finite and > 0, got 0.0"),
        ({"fov": torch.tensor([180.0, 1.0])}, "fov[0] must be degrees in (0, 180), got 180.0"),
        (
            {"azimuth": torch.tensor([float("nan"), 0.0])},
            "azimuth[0] must be finite degrees, got nan",
        ),
        ({"up": "x"}, "up must be 'y' or 'z', got 'x'"),
        ({"center": (0.0, 1.0)}, "center must be 3 finite numbers, got (0.0, 1.0)"),
        (
            {"light": torch.ones(2, 2)},
            "light must be None or a float tensor of shape (2, 3) of light positions, got float32 (2, 2)",
        ),
    ]
    for kw, text in cases:
        args = {"azimuth": one, "elevation": one, "radius": one, "fov": one} | kw
        with pytest.raises(InputError) as e:
            SphericalCameras(**args)
        assert str(e.value) == text


def test_registry_and_specs():
    assert available() == ("stable_diffusion", "target")
    assert parse_spec("target:C:/meshes/a.obj") == ("target", "C:/meshes/a.obj")
    assert parse_spec("stable_diffusion") == ("stable_diffusion", None)
    with pytest.raises(InputError) as e:
        create("dreamfusion", prompt="a mug")
    assert str(e.value) == (
        "unknown guidance 'dreamfusion'; the known ones are: stable_diffusion[:MODEL_DIR], "
        "target:MESH_OR_CHECKPOINT"
    )
    with pytest.raises(InputError) as e:
        create(3)
    assert str(e.value) == (
        "guidance must be a name such as stable_diffusion[:MODEL_DIR], target:MESH_OR_CHECKPOINT, got int"
    )
    with pytest.raises(InputError) as e:
        create("target:mesh.obj", colour=(1, 0, 0))
    assert str(e.value).startswith(
        "guidance 'target' does not take 'colour'; its settings are: path, prompt, resolution, "
    )
    with pytest.raises(InputError) as e:
        create("target:mesh.obj", path="other.obj")
    assert str(e.value) == (
        "guidance 'target:mesh.obj' gives path twice: after ':' and as the setting path"
    )


def test_register_checks():
    with pytest.raises(InputError) as e:
        register("not a name")
    assert str(e.value) == (
        "a guidance name must be an identifier like 'stable_diffusion', got 'not a name'"
    )
    with pytest.raises(InputError) as e:
        register("target")(type("Other", (Guidance,), {}))
    assert str(e.value) == "guidance 'target' is already registered to TargetGuidance"
    with pytest.raises(InputError) as e:
        register("plain")(object)
    assert str(e.value) == "register('plain') decorates Guidance subclasses, got <class 'object'>"
    assert available() == ("stable_diffusion", "target")


def test_import_needs_neither_diffusers_nor_transformers():
    code = (
        "import sys\n"
        "sys.modules['diffusers'] = None\n"
        "sys.modules['transformers'] = None\n"
        "import fields3d.guidance as g\n"
        "from fields3d.errors import BackendUnavailable\n"
        "assert g.available() == ('stable_diffusion', 'target')\n"
        "try:\n"
        "    g.create('stable_diffusion', prompt='a mug', device='cpu')\n"
        "except BackendUnavailable as e:\n"
        "    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FIELDS3D_SD_MODEL"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == (
        "Stable Diffusion guidance needs diffusers and transformers (diffusers is not "
        "installed): pip install 'fields3d[generate]'"
    )
