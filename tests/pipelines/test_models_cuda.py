"""Trained models rendered on CUDA as on the CPU: a NeRF loaded from its checkpoint (CPU-trained,
a few steps) and a reconstructed field (a sphere). What a viewer on a GPU does.

Run on a GPU (marked `cuda`: skipped with the reason on machines without one, run by
scripts/gpu-check) and on the CUDA launchers emulated on the host (the ``twin`` fixture)."""

from types import SimpleNamespace

import torch
from nerf_cases import TINIER

from fields3d.fields.sdf_grid import BandSDFGrid
from fields3d.geometry.pointcloud import Normalization
from fields3d.pipelines.models import load_model
from fields3d.pipelines.nerf import NerfConfig, train_nerf
from fields3d.pipelines.recon.checkpoint import save_field

TINY = dict(TINIER, device="cpu")


def test_nerf_renders_on_cuda_as_on_the_cpu(twin, tmp_path):
    train_nerf(NerfConfig(**TINY, output=str(tmp_path), steps=30), progress=False)
    cpu = load_model(tmp_path / "checkpoint.safetensors", device="cpu")
    cams = cpu.orbit(2, width=32)
    expected = [cpu.render(cams, k) for k in range(2)]
    with twin.active():
        gpu = load_model(tmp_path / "checkpoint.safetensors", device=twin.device)
        got = [gpu.render(cams, k) for k in range(2)]
    assert gpu.device.type == twin.device and gpu.field.aabb.device.type == twin.device
    for a, b in zip(expected, got):
        for name in ("color", "depth", "opacity"):
            assert b[name].device.type == twin.device
            torch.testing.assert_close(b[name].cpu(), a[name], atol=2e-3, rtol=1e-3)


def test_reconstructed_field_renders_on_cuda_as_on_the_cpu(twin, tmp_path):
    axis = torch.linspace(-1, 1, 33)
    x = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    values = x.norm(dim=-1) - 0.5
    path = save_field(
        tmp_path / "s.field.safetensors",
        BandSDFGrid.from_coarse(values, values.abs() < 0.2),
        Normalization((1.0, 2.0, 3.0), 2.0),
        SimpleNamespace(method="gridpull", input="s.ply"),
    )
    cpu = load_model(path, device="cpu")
    cams = cpu.orbit(2, 32)
    a = cpu.render(cams, 1)
    with twin.active():
        b = load_model(path, device=twin.device).render(cams, 1)
    assert torch.equal(b["opacity"].cpu(), a["opacity"])
    torch.testing.assert_close(b["depth"].cpu(), a["depth"], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(b["color"].cpu(), a["color"], atol=1e-3, rtol=0)


def test_nerf_trains_on_cuda_as_on_the_cpu(twin, tmp_path):
    """Training in a loop (marching, compositing, occupancy updates, the hash grid's backward) on
    the twin follows the CPU. Emulated, the random rays are the CPU's and only the order of the
    atomic table-gradient sums differs; a GPU draws other rays, so it is held to a looser bound."""
    same = dict(TINY, steps=30, color_layers=1, step_size=0.01)
    cpu = train_nerf(NerfConfig(**same, output=str(tmp_path / "cpu")), progress=False)
    with twin.active():
        other = train_nerf(
            NerfConfig(**{**same, "device": twin.device}, output=str(tmp_path / "twin")),
            progress=False,
        )
    assert other.steps == cpu.steps == 30
    assert cpu.psnr > 9  # 7.6 dB after one step: the fit moved, so agreeing means something
    assert abs(other.psnr - cpu.psnr) < (0.01 if twin.kind == "emulated" else 1.0)
