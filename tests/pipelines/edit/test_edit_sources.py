"""The edit's sources: a NeRF (`fields3d nerf`) and a generated object (`fields3d generate`), each
trained for a step here, open with their scene (box, up axis, cameras, background) and distil into
a voxel grid whose renders match theirs (PSNR reported); a checkpoint of another kind is refused
with the exact message."""

from pathlib import Path

import pytest
import torch

from fields3d.checkpoint import save_checkpoint
from fields3d.errors import CheckpointError
from fields3d.pipelines.edit.distill import distill
from fields3d.pipelines.edit.source import open_source
from fields3d.pipelines.generate import GenerateConfig, generate
from fields3d.pipelines.nerf import NerfConfig, train_nerf

ROOT = Path(__file__).parents[3]


def nerf(tmp_path) -> Path:
    config = NerfConfig(
        data=str(ROOT / "assets" / "scenes" / "spot"),
        output=str(tmp_path / "nerf"),
        steps=1,
        downscale=10,
        samples_per_step=4096,
        n_levels=4,
        log2_hashmap_size=12,
        max_resolution=64,
        n_hidden=16,
        grid_resolution=16,
        step_size=0.05,
        time_budget=None,
        turntable_frames=0,
        device="cpu",
    )
    train_nerf(config, progress=False)
    return tmp_path / "nerf" / "checkpoint.safetensors"


def generated(tmp_path) -> Path:
    config = GenerateConfig(
        guidance=f"target:{ROOT / 'assets' / 'meshes' / 'spot.obj'}",
        output=str(tmp_path / "gen"),
        device="cpu",
        steps=1,
        resolution=16,
        grid_resolution=16,
        turntable_frames=0,
        mesh_resolution=0,
        eval_views=0,
        encoding={"type": "hash_grid", "n_levels": 4, "log2_hashmap_size": 12},
        n_hidden=16,
    )
    generate(config, progress=False)
    return tmp_path / "gen" / "checkpoint.safetensors"


@pytest.mark.parametrize("make, up", [(nerf, "z"), (generated, "y")], ids=["nerf", "generate"])
def test_sources_open_and_distil(tmp_path, make, up):
    source = open_source(make(tmp_path), "cpu")
    assert source.up == up and source.distance > source.radius > 0 and 0 < source.fov < 180
    assert len(source.background) == 3
    field, info = distill(
        source, 12, torch.device("cpu"), views=2, size=12, steps=2, lr=0.1, step=source.radius / 32
    )
    assert field.resolution == 12 and torch.isfinite(field.density_grid()).all()
    assert info["fit_steps"] == 2 and 0 < info["psnr"] <= 100 and info["psnr_sampled"] > 0


def test_unknown_kind(tmp_path):
    odd = save_checkpoint(tmp_path / "odd.safetensors", {"x": torch.zeros(1)}, {"kind": "mystery"})
    with pytest.raises(CheckpointError) as err:
        open_source(odd, "cpu")
    assert str(err.value) == (
        f"checkpoint {odd} holds a 'mystery', not a radiance field; fields3d edit takes a "
        "checkpoint `fields3d nerf`, `fields3d generate` or `fields3d edit` wrote"
    )
