"""`fields3d` itself: the command list, help without torch, one command's parser, usage errors, python -m."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fields3d.cli import main


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
        "voromesh",
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
        "'render', 'generate', 'edit', 'view', 'mosaic-sdf', 'voromesh')"
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
