"""`fields3d mosaic-sdf`: runs, re-meshes a saved Mosaic-SDF, and refuses bad input with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import trimesh

from fields3d.checkpoint import save_checkpoint
from fields3d.cli import main
from fields3d.geometry.mosaic_sdf import load_mosaic

SMALL = ["--volumes", "64", "--resolution", "5", "--mesh-resolution", "32", "--device", "cpu"]


@pytest.fixture(scope="module")
def ball(tmp_path_factory):
    path = tmp_path_factory.mktemp("mesh") / "ball.obj"
    trimesh.creation.icosphere(subdivisions=3).export(path)
    return path


def test_converts_meshes_and_reports(ball, tmp_path, capsys):
    out = tmp_path / "out" / "ball.safetensors"
    assert main(["mosaic-sdf", str(ball), "-o", str(out), *SMALL, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("mosaic      64 volumes of 5^3 (8000 values), scale ")
    assert "metrics     Chamfer-L1 " in printed and str(out.with_suffix(".ply")) in printed
    assert {p.name for p in out.parent.iterdir()} == {"ball.safetensors", "ball.ply", "ball.json"}
    metrics = json.loads(out.with_suffix(".json").read_text())
    assert metrics["f_score"] > 0.9 and metrics["normal_consistency"] > 0.99
    assert metrics["surface_undefined_share"] == 0 and 0 < metrics["undefined_share"] < 1
    assert metrics["convert_seconds"] > 0 and metrics["volumes"] == 64
    mesh = trimesh.load(out.with_suffix(".ply"))
    assert mesh.is_watertight


def test_finetunes_and_remeshes_a_saved_one(ball, tmp_path, capsys):
    out = tmp_path / "ball.safetensors"
    argv = ["mosaic-sdf", str(ball), "-o", str(out), *SMALL, "--finetune-steps", "5", "--quiet"]
    assert main(argv) == 0
    assert "fine-tuned  5 steps in " in capsys.readouterr().out
    again = tmp_path / "again.safetensors"
    argv = ["mosaic-sdf", str(out), "-o", str(again), "--mesh-resolution", "32", "--quiet"]
    assert main([*argv, "--gt", str(ball)]) == 0
    printed = capsys.readouterr().out
    assert "converted" not in printed and "metrics     Chamfer-L1 " in printed
    assert torch.equal(load_mosaic(again).tensor(), load_mosaic(out).tensor())
    assert main(argv + ["--finetune-steps", "3"]) == 2
    assert capsys.readouterr().err == (
        "error: finetune_steps=3 needs the mesh to fit: pass --gt MESH with a saved Mosaic-SDF, "
        "or convert the mesh itself\n"
    )


def _refused(argv, capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    return captured.err


def test_missing_mesh(tmp_path, capsys):
    path = tmp_path / "none.obj"
    err = _refused(["mosaic-sdf", str(path), "-o", str(tmp_path / "m.safetensors")], capsys)
    assert (
        err
        == f"error: mesh not found: {path}; pass the path of a .ply, .obj, .off, .stl or .glb file\n"
    )


def test_corrupt_mesh(tmp_path, capsys):
    path = tmp_path / "bad.ply"
    path.write_bytes(b"garbage\x00\x01")
    err = _refused(["mosaic-sdf", str(path), "-o", str(tmp_path / "m.safetensors")], capsys)
    assert err == (
        f"error: cannot read mesh {path}: ValueError: Not a ply file!; check that it is a "
        "complete, valid .ply file\n"
    )
    assert not list(tmp_path.glob("m.*"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--volumes", "0"], "volumes must be an integer from 1 to 1048576, got 0"),
        (["--resolution", "1"], "resolution must be an integer from 2 to 64, got 1"),
        (["--resolution", "65"], "resolution must be an integer from 2 to 64, got 65"),
        (
            ["--finetune-steps", "-1"],
            "finetune_steps must be an integer from 0 to 10000000, got -1",
        ),
        (["--mesh-resolution", "4"], "mesh_resolution must be an integer from 8 to 1024, got 4"),
        (
            ["--volumes", "500000", "--resolution", "64"],
            "volumes x resolution^3 must be at most 100000000 values (memory), got "
            "500000 x 64^3 = 131072000000",
        ),
    ],
)
def test_bad_settings(ball, tmp_path, capsys, flags, message):
    err = _refused(["mosaic-sdf", str(ball), "-o", str(tmp_path / "m.safetensors"), *flags], capsys)
    assert err == f"error: {message}\n"


def test_output_must_be_a_tensor_file(ball, tmp_path, capsys):
    out = tmp_path / "m.ply"
    err = _refused(["mosaic-sdf", str(ball), "-o", str(out)], capsys)
    assert err == (
        "error: out must be a .safetensors path (the Mosaic-SDF; the mesh and metrics go beside "
        f"it), got {str(out)!r}\n"
    )


def test_corrupt_tensor_file(tmp_path, capsys):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"xx")
    err = _refused(["mosaic-sdf", str(path), "-o", str(tmp_path / "m.safetensors")], capsys)
    assert err == (
        f"error: checkpoint {path} is corrupt or not a safetensors file (Error while "
        "deserializing header: header too small)\n"
    )
    header = {"kind": "mosaic_sdf", "volumes": 2, "resolution": 3}
    save_checkpoint(path, {"mosaic": torch.ones(3, 31)}, header)
    err = _refused(["mosaic-sdf", str(path), "-o", str(tmp_path / "m.safetensors")], capsys)
    assert err == (
        f"error: Mosaic-SDF {path} does not match its header (volumes 2, resolution 3): it holds "
        "a float32 tensor (3, 31); write it again with `fields3d mosaic-sdf`\n"
    )


def test_help_has_an_example_and_needs_no_torch():
    code = (
        "import sys\nfrom fields3d.cli import main\ntry:\n    main(['mosaic-sdf', '--help'])\n"
        "except SystemExit:\n    pass\nprint('torch imported:', 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "examples:\n  fields3d mosaic-sdf assets/meshes/spot.obj" in done.stdout
    assert done.stdout.rstrip().endswith("torch imported: False")


def test_help_defaults_are_the_pipelines():
    import dataclasses

    from fields3d.cli.mosaic import DEFAULTS
    from fields3d.pipelines.mosaic_sdf import MosaicConfig

    fields = {f.name: f.default for f in dataclasses.fields(MosaicConfig)}
    assert DEFAULTS == {name: fields[name] for name in DEFAULTS}
