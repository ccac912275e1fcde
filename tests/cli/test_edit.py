"""`fields3d edit`: the command line's errors, each naming its input, with exit status 2 (a
checkpoint of the wrong kind, a missing one, an empty prompt, a missing model folder), and a
short run with target guidance that prints what it wrote."""

from pathlib import Path

import pytest
import torch

from fields3d.cli import main
from fields3d.fields import BandSDFGrid
from fields3d.geometry import Normalization
from fields3d.guidance.stable_diffusion import HOW_TO_GET, LAYOUT
from fields3d.pipelines.edit import VoxelField, save_voxels
from fields3d.pipelines.recon import ReconConfig
from fields3d.pipelines.recon.checkpoint import save_field

WRITERS = "`fields3d nerf`, `fields3d generate` or `fields3d edit`"


def run_cli(args, capsys):
    code = main(["edit", *args])
    return code, capsys.readouterr()


@pytest.fixture
def ball(tmp_path) -> Path:
    field = VoxelField([[-1, -1, -1], [1, 1, 1]], resolution=8)
    inside = (field.vertices().norm(dim=-1) < 0.6).float() * 200
    field.set_grids(inside, torch.full((8, 8, 8, 3), 0.5))
    return save_voxels(tmp_path / "ball.safetensors", field)


def test_errors_exit_2_with_the_message(tmp_path, capsys, monkeypatch, ball):
    monkeypatch.delenv("FIELDS3D_SD_MODEL", raising=False)
    out = ["-o", str(tmp_path / "o")]
    code, got = run_cli([str(ball), "", *out], capsys)
    assert (code, got.err) == (
        2,
        "error: prompt must describe the edit (e.g. 'wearing a party hat'), got ''\n",
    )
    missing = tmp_path / "nothing.safetensors"
    code, got = run_cli([str(missing), "a hat", *out], capsys)
    assert (code, got.err) == (
        2,
        f"error: checkpoint not found: {missing}; pass the checkpoint.safetensors that {WRITERS} "
        "wrote\n",
    )
    axis = torch.linspace(-1, 1, 17)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    sphere = (x**2 + y**2 + z**2).sqrt() - 0.5
    surface = tmp_path / "ball.field.safetensors"
    save_field(
        surface,
        BandSDFGrid.from_coarse(sphere, sphere.abs() < 0.3),
        Normalization((0, 0, 0), 1.0),
        ReconConfig("ball.xyz"),
    )
    code, got = run_cli([str(surface), "a hat", *out], capsys)
    assert (code, got.err) == (
        2,
        f"error: checkpoint {surface} holds a 'band_sdf_grid', a reconstructed surface without "
        f"colour; fields3d edit takes a radiance field: a checkpoint {WRITERS} wrote\n",
    )
    no_model = tmp_path / "no-model"
    code, got = run_cli([str(ball), "a hat", "--model", str(no_model), *out], capsys)
    assert (code, got.err) == (
        2,
        f"error: Stable Diffusion model not found: {no_model} does not exist; {LAYOUT}; "
        f"{HOW_TO_GET}\n",
    )
    code, got = run_cli([str(ball), "a hat", "--resolution", "2", *out], capsys)
    assert (code, got.err) == (2, "error: resolution must be an integer from 4 to 512, got 2\n")
    assert not (tmp_path / "o").exists()  # nothing written before the inputs were checked


def test_a_short_run_prints_what_it_wrote(tmp_path, capsys, ball):
    args = [str(ball), "a darker ball", "--guidance", f"target:{ball}", "-o", str(tmp_path / "o")]
    args += ["--steps", "2", "--resolution", "8", "--render-size", "8", "--device", "cpu"]
    code, got = run_cli([*args, "--quiet", "--no-localise"], capsys)
    assert code == 0, got.err
    lines = got.out.splitlines()
    assert lines[0].startswith("distilled   PSNR ") and lines[1].startswith("edited      2 steps")
    assert lines[2] == "localised   none (localise off): the whole edited grid: 100.0% of voxels"
    assert (tmp_path / "o" / "checkpoint.safetensors").is_file()
    assert (tmp_path / "o" / "turntable.gif").is_file()
