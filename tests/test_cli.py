"""The `fields3d` command: info, fit-image, help examples and error exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fields3d.cli import main

ASTRONAUT = Path(__file__).resolve().parents[1] / "assets" / "images" / "astronaut.png"


def test_info_json_lists_cpu(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "cpu" in data["backends"] and data["torch"] and "fields3d" in data


def test_info_lines(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("backends") and "cpu" in line for line in out.splitlines())


@pytest.mark.parametrize("command", ["info", "fit-image"])
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
    argv = ["fit-image", str(image), "-o", str(out), "--steps", "5", "--batch-size", "256",
            "--log2-hashmap-size", "10", "--n-levels", "4", "--device", "cpu", "--seed", "1", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("psnr ") and " dB\n" in printed and str(out / "fit.png") in printed
    assert {p.name for p in out.iterdir()} == {"fit.png", "comparison.png", "metrics.json", "config.json"}
    config = json.loads((out / "config.json").read_text())
    assert (config["steps"], config["batch_size"], config["n_levels"], config["seed"]) == (5, 256, 4, 1)


def test_python_dash_m(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fields3d", "fit-image", str(tmp_path / "none.png")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr == f"error: image not found: {tmp_path / 'none.png'}; pass the path of a PNG or JPEG file\n"
