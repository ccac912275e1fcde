"""`fields3d voromesh` (fields3d/cli/voromesh.py): a run and its printout; bad input gets an exact
`error:` line and exit status 2."""

from __future__ import annotations

import json

import pytest
import trimesh

from fields3d.cli import main

SPOT = "assets/meshes/spot.obj"
ACCEPTED = (
    "a mesh (.ply, .obj, .off, .stl, .glb), a point cloud (.ply, .xyz, .pts, .txt, .npy) or a "
    "field checkpoint from fields3d recon (.field.safetensors)"
)


def test_help_shows_the_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main(["voromesh", "--help"])
    assert info.value.code == 0
    assert "fields3d voromesh assets/meshes/spot.obj" in capsys.readouterr().out


def test_runs_and_reports(tmp_path, capsys):
    trimesh.creation.icosphere(subdivisions=3).export(tmp_path / "ball.obj")
    out = tmp_path / "out" / "ball.ply"
    argv = ["voromesh", str(tmp_path / "ball.obj"), "-o", str(out), "--generators", "500"]
    assert main([*argv, "--steps", "20", "--device", "cpu", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mesh        ") and ", watertight (" in lines[0]
    assert lines[1].startswith("metrics     Chamfer-L1 ")
    assert lines[2:] == [
        f"mesh        {out}",
        f"generators  {out.with_suffix('.voromesh.safetensors')}",
        f"report      {out.with_suffix('.json')}",
    ]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["mesh"]["watertight"] and report["config"]["steps"] == 20


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "none.obj"
    assert main(["voromesh", str(missing), "-o", str(tmp_path / "m.ply")]) == 2
    assert capsys.readouterr().err == f"error: input not found: {missing}; pass {ACCEPTED}\n"


def test_wrong_extension(tmp_path, capsys):
    (tmp_path / "scan.dat").write_text("1 2 3\n")
    assert main(["voromesh", str(tmp_path / "scan.dat"), "-o", str(tmp_path / "m.ply")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: cannot read {tmp_path / 'scan.dat'}: unsupported extension '.dat'; pass "
        f"{ACCEPTED}\n"
    )


def test_wrong_output_extension(tmp_path, capsys):
    assert main(["voromesh", SPOT, "-o", str(tmp_path / "m.txt")]) == 2
    err = capsys.readouterr().err
    expected = f"error: output must end in one of .ply, .obj, .off, .stl, .glb, got '{tmp_path / 'm.txt'}'\n"
    assert err == expected


def test_corrupt_mesh(tmp_path, capsys):
    (tmp_path / "bad.obj").write_text("this is not an obj file\n")
    assert main(["voromesh", str(tmp_path / "bad.obj"), "-o", str(tmp_path / "m.ply")]) == 2
    assert capsys.readouterr().err == (
        f"error: mesh {tmp_path / 'bad.obj'} holds no triangles; to reconstruct a point cloud use "
        "fields3d recon\n"
    )


def test_corrupt_field(tmp_path, capsys):
    path = tmp_path / "bad.field.safetensors"
    path.write_bytes(b"garbage!" * 4)
    assert main(["voromesh", str(path), "-o", str(tmp_path / "m.ply")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: checkpoint {path} is corrupt or not a safetensors file (")


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--generators", "0", "--generators must be an integer from 8 to 10000000, got 0"),
        ("--generators", "7", "--generators must be an integer from 8 to 10000000, got 7"),
        (
            "--generators",
            "20000000",
            "--generators must be an integer from 8 to 10000000, got 20000000",
        ),
        ("--steps", "-3", "--steps must be an integer >= 0, got -3"),
        ("--samples", "2", "--samples must be an integer from 10 to 100000000, got 2"),
    ],
)
def test_bad_numbers_name_their_flags(flag, value, message, tmp_path, capsys):
    assert main(["voromesh", SPOT, "-o", str(tmp_path / "m.ply"), flag, value]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not list(tmp_path.iterdir())  # nothing written


def test_generators_not_a_number(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["voromesh", SPOT, "-o", str(tmp_path / "m.ply"), "--generators", "many"])
    assert info.value.code == 2
    assert "argument --generators: invalid int value: 'many'" in capsys.readouterr().err
