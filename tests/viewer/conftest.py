import pathlib

import pytest
import torch

pytest.importorskip("viser", reason="the viewer needs viser: pip install 'fields3d[view]'")


@pytest.fixture(scope="session")
def ball_field(tmp_path_factory) -> pathlib.Path:
    """A recon field checkpoint of a ball of radius 0.5 * 2 = 1 around (0, 0, 0), as recon writes."""
    from fields3d.fields import BandSDFGrid
    from fields3d.geometry import Normalization
    from fields3d.pipelines.recon import ReconConfig
    from fields3d.pipelines.recon.checkpoint import save_field

    axis = torch.linspace(-1, 1, 49)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    ball = (x**2 + y**2 + z**2).sqrt() - 0.5
    field = BandSDFGrid.from_coarse(ball, ball.abs() < 0.2)
    path = tmp_path_factory.mktemp("field") / "ball.field.safetensors"
    save_field(path, field, Normalization((0, 0, 0), 2.0), ReconConfig("ball.xyz"))
    return path
