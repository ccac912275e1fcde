"""The VoroMesh pipeline on each kind of input (mesh, point cloud, saved field): a closed mesh near
the truth, its files and report; inputs told apart; bad settings refused with exact texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh
from safetensors.torch import load_file

from fields3d.errors import InputError, ModelNotFound
from fields3d.fields import BandSDFGrid
from fields3d.geometry import Normalization, load_mesh, sample_mesh
from fields3d.pipelines.recon import ReconConfig
from fields3d.pipelines.recon.checkpoint import save_field
from fields3d.pipelines.voromesh import VoroMeshConfig, input_kind, voromesh

SMALL = dict(generators=800, steps=60, eval_points=20000, device="cpu")


def assert_on_the_ball(verts: np.ndarray, centre=(0.0, 0.0, 0.0), p95: float = 0.12) -> None:
    """The vertices near the sphere of radius 2: half within 2% of it, 95% within 6%, all within a
    grid spacing (0.44: 800 generators); corners where cells meet stand out most."""
    off = np.abs(np.linalg.norm(verts - centre, axis=1) - 2.0)
    spread = np.percentile(off, [50, 95, 100])
    assert spread[0] < 0.04 and spread[1] < p95 and spread[2] < 0.44, spread


@pytest.fixture(scope="module")
def ball():
    return trimesh.creation.icosphere(subdivisions=4, radius=2.0)


def test_mesh_input_writes_a_closed_mesh_near_the_input(tmp_path, ball):
    ball.copy().apply_translation((10.0, 0.0, 0.0)).export(tmp_path / "ball.obj")
    config = VoroMeshConfig(tmp_path / "ball.obj", tmp_path / "out" / "ball.ply", **SMALL)
    result = voromesh(config, progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "ball.json",
        "ball.ply",
        "ball.voromesh.safetensors",
    ]
    report = json.loads((tmp_path / "out" / "ball.json").read_text())
    assert report["mesh"]["watertight"] and report["mesh"]["winding_consistent"]
    assert report["mesh"]["volume"] == pytest.approx(4 / 3 * np.pi * 8, rel=0.03)
    assert report["input"] == {"kind": "mesh", "targets": 8000}  # 10 a generator
    # 20000 samples a surface: Chamfer-L1 of the ball against itself is 0.0036 (sample spacing)
    assert report["metrics"]["chamfer_l1"] < 0.0045 and report["metrics"]["f_score@1%"] > 0.98
    assert_on_the_ball(result.verts, (10.0, 0.0, 0.0))
    assert report["fit"]["final_loss"] < report["fit"]["first_loss"]
    assert 700 < report["generators"]["count"] < 900
    written = load_mesh(tmp_path / "out" / "ball.ply")
    assert written.is_watertight and len(written.faces) == report["mesh"]["faces"]
    np.testing.assert_allclose(written.vertices, result.verts, atol=1e-5)
    saved = load_file(tmp_path / "out" / "ball.voromesh.safetensors")
    assert saved["generators"].shape == (report["generators"]["count"], 3)
    assert saved["occupancy"].dtype == torch.bool
    assert int(saved["occupancy"].sum()) == report["generators"]["inside"]
    assert abs(saved["generators"][:, 0].mean().item() - 10.0) < 0.1  # input coordinates


def test_point_cloud_input_goes_through_a_recon_field(tmp_path, ball):
    np.savetxt(tmp_path / "scan.xyz", sample_mesh(ball, 3000, seed=0).points)
    config = VoroMeshConfig(
        tmp_path / "scan.xyz",
        tmp_path / "scan.ply",
        field_resolution=32,
        field_steps=20,
        **SMALL,
    )
    result = voromesh(config, progress=False)
    assert result.report["input"]["kind"] == "cloud" and "metrics" not in result.report
    assert result.report["mesh"]["watertight"]
    assert_on_the_ball(result.verts, p95=0.2)  # labelled by a rough field: 20 steps at 32^3


def test_saved_field_input(tmp_path, ball):
    axis = torch.linspace(-1, 1, 33)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    sphere = (x**2 + y**2 + z**2).sqrt() - 0.5  # radius 0.5 in the unit cube
    field = BandSDFGrid.from_coarse(sphere, sphere.abs() < 0.2)
    path = tmp_path / "ball.field.safetensors"
    save_field(path, field, Normalization((0, 0, 0), 4.0), ReconConfig("ball.xyz"))  # radius 2
    config = VoroMeshConfig(path, tmp_path / "ball.obj", field_resolution=48, **SMALL)
    result = voromesh(config, progress=False)
    assert result.report["input"]["kind"] == "field" and result.report["mesh"]["watertight"]
    assert_on_the_ball(result.verts)


def test_input_kinds(tmp_path, ball):
    ball.export(tmp_path / "mesh.ply")
    trimesh.PointCloud(ball.vertices).export(tmp_path / "cloud.ply")
    np.save(tmp_path / "cloud.npy", ball.vertices)
    (tmp_path / "f.field.safetensors").write_bytes(b"")
    assert input_kind(tmp_path / "mesh.ply") == "mesh"
    assert input_kind(tmp_path / "cloud.ply") == "cloud"
    assert input_kind(tmp_path / "cloud.npy") == "cloud"
    assert input_kind(tmp_path / "f.field.safetensors") == "field"
    accepted = (
        "a mesh (.ply, .obj, .off, .stl, .glb), a point cloud (.ply, .xyz, .pts, .txt, .npy) or a "
        "field checkpoint from fields3d recon (.field.safetensors)"
    )
    with pytest.raises(ModelNotFound) as info:
        input_kind(tmp_path / "none.obj")
    assert str(info.value) == f"input not found: {tmp_path / 'none.obj'}; pass {accepted}"
    (tmp_path / "notes").write_text("x")
    with pytest.raises(InputError) as info:
        input_kind(tmp_path / "notes")
    assert str(info.value) == f"cannot read {tmp_path / 'notes'}: no extension; pass {accepted}"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"generators": 7}, "generators must be an integer from 8 to 10000000, got 7"),
        ({"steps": -1}, "steps must be an integer >= 0, got -1"),
        ({"samples": 5}, "samples must be an integer from 10 to 100000000, got 5"),
        ({"field_steps": 0}, "field_steps must be an integer >= 1, got 0"),
        ({"batch_fraction": 0}, "batch_fraction must be a number in (0, 1], got 0"),
        ({"device": "tpu"}, "device must be 'auto', 'cpu' or 'cuda', got 'tpu'"),
        (
            {"output": "mesh.txt"},
            "output must end in one of .ply, .obj, .off, .stl, .glb, got 'mesh.txt'",
        ),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(InputError) as info:
        VoroMeshConfig("ball.obj", **kwargs)
    assert str(info.value) == message


def test_paths_must_be_paths():
    with pytest.raises(InputError) as info:
        VoroMeshConfig(3)
    assert str(info.value) == (
        "input must be the path of a mesh, point cloud or field checkpoint (a str or "
        "os.PathLike), got int"
    )
    with pytest.raises(InputError) as info:
        VoroMeshConfig("ball.obj", "")
    assert str(info.value) == "output must be the path of the mesh to write, got an empty string"


def test_a_field_without_a_surface_is_refused_before_anything_is_written(tmp_path):
    axis = torch.linspace(-1, 1, 17)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    far = (x**2 + y**2 + z**2).sqrt() + 0.5  # positive everywhere: no zero level
    path = tmp_path / "empty.field.safetensors"
    save_field(
        path,
        BandSDFGrid.from_coarse(far, far < 0.7),
        Normalization((0, 0, 0), 1.0),
        ReconConfig("e.xyz"),
    )
    config = VoroMeshConfig(path, tmp_path / "out.ply", field_resolution=32, **SMALL)
    with pytest.raises(InputError) as info:
        voromesh(config, progress=False)
    assert str(info.value) == (
        f"the field in {path} has no surface at 32^3 points (its values keep one sign); nothing "
        "was written"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.field.safetensors"]
