"""`fields3d recon`, `recon-batch`, `mesh` and `eval` (fields3d/cli/recon.py)."""

from __future__ import annotations

import pytest

from fields3d.cli import main


@pytest.mark.parametrize("points", ["0", "-5", "200000000"])
def test_eval_names_its_points_flag(points, capsys):
    """It said 'n_points must be an integer >= 1', a name the user never typed."""
    mesh = "assets/meshes/spot.obj"
    assert main(["eval", mesh, mesh, "--points", points]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --points must be an integer from 1 to 100000000, got {points}\n"
    )
