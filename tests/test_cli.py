"""The `fields3d` command: info, fit-image, fit-sdf, help examples and error exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fields3d.cli import main, parse_encoding
from fields3d.encodings import available
from fields3d.errors import InputError

ASTRONAUT = Path(__file__).resolve().parents[1] / "assets" / "images" / "astronaut.png"
SPOT = Path(__file__).resolve().parents[1] / "assets" / "meshes" / "spot.obj"


def test_info_json_lists_cpu(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "cpu" in data["backends"] and data["torch"] and "fields3d" in data


def test_info_lines(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("backends") and "cpu" in line for line in out.splitlines())


@pytest.mark.parametrize("command", ["info", "fit-image", "fit-sdf"])
def test_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"fields3d {command}" in out


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert "usage: fields3d" in capsys.readouterr().err


def test_fit_image_missing_file(tmp_path, capsys):
    path = tmp_path / "missing.png"
    assert main(["fit-image", str(path), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: image not found: {path}; pass the path of a PNG or JPEG file\n"
    assert "Traceback" not in captured.err and captured.out == ""


def test_fit_image_bad_steps(tmp_path, capsys):
    assert main(["fit-image", str(ASTRONAUT), "--steps", "0", "--quiet"]) == 2
    assert capsys.readouterr().err == "error: steps must be an integer >= 1, got 0\n"


def test_fit_image_runs_and_reports(tmp_path, capsys):
    image = tmp_path / "tiny.png"
    Image.open(ASTRONAUT).convert("RGB").resize((16, 16)).save(image)
    out = tmp_path / "out"
    argv = [
        "fit-image",
        str(image),
        "-o",
        str(out),
        "--steps",
        "5",
        "--batch-size",
        "256",
        "--log2-hashmap-size",
        "10",
        "--n-levels",
        "4",
        "--device",
        "cpu",
        "--seed",
        "1",
        "--quiet",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("psnr ") and " dB\n" in printed and str(out / "fit.png") in printed
    assert {p.name for p in out.iterdir()} == {
        "fit.png",
        "comparison.png",
        "metrics.json",
        "config.json",
    }
    config = json.loads((out / "config.json").read_text())
    assert (config["steps"], config["batch_size"], config["n_levels"], config["seed"]) == (
        5,
        256,
        4,
        1,
    )


def test_top_level_help_lists_every_command_without_importing_torch():
    code = (
        "import sys\nfrom fields3d.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch imported:', 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in (
        "info",
        "fit-image",
        "fit-sdf",
        "recon",
        "recon-batch",
        "mesh",
        "eval",
        "nerf",
        "render",
    ):
        assert f"    {command}" in done.stdout
    assert done.stdout.rstrip().endswith("torch imported: False")


@pytest.mark.parametrize(
    "argv",
    [
        ["recon", "scan.ply"],
        ["recon-batch", "a.ply", "scans/", "-o", "out", "--resolution", "64", "--ray"],
        ["fit-sdf", "m.obj", "--steps", "7"],
        ["nerf", "--data", "d"],
        ["fit-image", "a.png", "--seed", "3"],
        ["render", "c.safetensors", "--frames", "4"],
    ],
)
def test_one_command_parser_parses_as_the_whole_one(argv):
    from fields3d.cli import _command_in, build_parser

    assert _command_in(argv) == argv[0]
    one, whole = build_parser(argv[0]).parse_args(argv), build_parser().parse_args(argv)
    assert vars(one) == vars(whole)


def test_mistyped_command_names_the_choices(capsys):
    with pytest.raises(SystemExit) as info:
        main(["recn", "scan.ply"])
    assert info.value.code == 2
    assert (
        "invalid choice: 'recn' (choose from 'info', 'fit-image', 'fit-sdf', 'recon', 'recon-batch', 'mesh', "
        "'eval', 'nerf', "
        "'render', 'generate', 'view')"
    ) in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fields3d", "fit-image", str(tmp_path / "none.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == f"error: image not found: {tmp_path / 'none.png'}; pass the path of a PNG or JPEG file\n"
    )


def test_parse_encoding():
    assert parse_encoding(None) is None
    assert parse_encoding("hash_grid") == {"type": "hash_grid"}
    assert parse_encoding(' {"type": "hash_grid", "n_levels": 4} ') == {
        "type": "hash_grid",
        "n_levels": 4,
    }
    known = ", ".join(available())
    with pytest.raises(InputError) as info:
        parse_encoding('{"type": hash_grid}')
    assert str(info.value) == (
        f"--encoding must be an encoding type name ({known}) or a JSON object; "
        "'{\"type\": hash_grid}' is neither (JSON: Expecting value: line 1 column 10 (char 9))"
    )
    deep = "[" * 100000 + "]" * 100000
    with pytest.raises(InputError) as info:
        parse_encoding(deep)
    assert str(info.value) == (
        f"--encoding must be an encoding type name ({known}) or a JSON object; "
        f"{deep[:200]!r} is neither (JSON: maximum recursion depth exceeded while decoding "
        "a JSON array from a unicode string)"
    )
    with pytest.raises(InputError) as info:
        parse_encoding('["hash_grid"]')
    assert (
        str(info.value)
        == f"--encoding must be an encoding type name ({known}) or a JSON object, got a JSON "
        "list: '[\"hash_grid\"]'"
    )


def _tiny_image(tmp_path) -> Path:
    image = tmp_path / "tiny.png"
    Image.open(ASTRONAUT).convert("RGB").resize((16, 16)).save(image)
    return image


def test_fit_image_with_an_encoding(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "fit-image",
        str(_tiny_image(tmp_path)),
        "-o",
        str(out),
        "--steps",
        "3",
        "--batch-size",
        "256",
        "--encoding",
        '{"type": "hash_grid", "n_levels": 4}',
        "--log2-hashmap-size",
        "10",
        "--device",
        "cpu",
        "--quiet",
    ]
    assert main(argv) == 0
    assert "encoding    hash_grid (n_input_dims=2, n_levels=4, " in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["encoding"]["n_levels"] == 4 and metrics["encoding"]["log2_hashmap_size"] == 10
    assert metrics["encoding"]["n_input_dims"] == 2 and metrics["encoding_n_params"] > 0


@pytest.mark.parametrize(
    "flag, message",
    [
        ("hashgrid", "unknown encoding type 'hashgrid'; known types: {known}"),
        (
            '{"type": "hash_grid", "n_input_dims": 3}',
            "the hash_grid encoding is set to n_input_dims=3; fit-image needs n_input_dims=2 (leave it out to get 2)",
        ),
        (
            "{nope",
            "--encoding must be an encoding type name ({known}) or a JSON object; '{{nope' is neither "
            "(JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
    ],
)
def test_fit_image_bad_encoding(flag, message, capsys):
    assert main(["fit-image", str(ASTRONAUT), "--encoding", flag, "--quiet"]) == 2
    assert capsys.readouterr().err == f"error: {message.format(known=', '.join(available()))}\n"


def test_fit_sdf_missing_mesh(tmp_path, capsys):
    path = tmp_path / "missing.obj"
    assert main(["fit-sdf", str(path), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert (
        captured.err
        == f"error: mesh not found: {path}; pass the path of a .ply, .obj, .off, .stl or .glb file\n"
    )
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_fit_sdf_unknown_encoding(tmp_path, capsys):
    assert (
        main(["fit-sdf", str(SPOT), "-o", str(tmp_path), "--encoding", "hashgrid", "--quiet"]) == 2
    )
    known = ", ".join(available())
    assert (
        capsys.readouterr().err
        == f"error: unknown encoding type 'hashgrid'; known types: {known}\n"
    )


def test_fit_sdf_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "out"
    encoding = '{"type": "hash_grid", "n_levels": 4, "log2_hashmap_size": 12, "base_resolution": 8}'
    argv = [
        "fit-sdf",
        str(SPOT),
        "-o",
        str(out),
        "--encoding",
        encoding,
        "--steps",
        "80",
        "--resolution",
        "32",
        "--device",
        "cpu",
        "--seed",
        "1",
        "--quiet",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (
        printed.startswith("iou ")
        and "encoding    hash_grid (n_input_dims=3, n_levels=4, " in printed
    )
    assert str(out / "mesh.ply") in printed
    assert {p.name for p in out.iterdir()} == {"mesh.ply", "metrics.json", "config.json"}
    config = json.loads((out / "config.json").read_text())
    assert (
        config["steps"],
        config["mc_resolution"],
        config["seed"],
        config["encoding"]["n_levels"],
    ) == (80, 32, 1, 4)


@pytest.mark.parametrize("points", ["0", "-5", "200000000"])
def test_eval_names_its_points_flag(points, capsys):
    """It said 'n_points must be an integer >= 1', a name the user never typed."""
    mesh = "assets/meshes/spot.obj"
    assert main(["eval", mesh, mesh, "--points", points]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --points must be an integer from 1 to 100000000, got {points}\n"
    )
