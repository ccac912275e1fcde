"""`fields3d fit-image` and `fit-sdf`: runs, reports and error exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from fields3d.cli import main
from fields3d.encodings import available

ASTRONAUT = Path(__file__).resolve().parents[2] / "assets" / "images" / "astronaut.png"
SPOT = Path(__file__).resolve().parents[2] / "assets" / "meshes" / "spot.obj"


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
