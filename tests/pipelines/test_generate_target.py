"""Target guidance proves the generation loop converges: from a blob, random cameras, our
renderer, the SDS gradient and Adam recover the shipped spot mesh (silhouette IoU >= 0.8 against
the target's renders and Chamfer-L1 below 0.03 of its diagonal, in 100 steps of 32-pixel
renders), and a broken loop fails those thresholds: the gradient's sign flipped, the weighting
lost (the weighted residual w(t) (eps_hat - eps) zeroed by a weight of 0), or the gradient applied
to a detached copy of the renders (the wrong tensor: nothing reaches the field)."""

from pathlib import Path

import pytest
import torch

from fields3d.guidance import guidance_loss, sds
from fields3d.pipelines.generate import GenerateConfig, generate
from fields3d.pipelines.generate import train as train_module

SPOT = Path(__file__).parents[2] / "assets" / "meshes" / "spot.obj"
IOU, CHAMFER = 0.8, 0.03


def run(tmp_path, name):
    config = GenerateConfig(
        guidance=f"target:{SPOT}",
        output=str(tmp_path / name),
        device="cpu",
        steps=100,
        resolution=32,
        lr=0.03,
        turntable_frames=0,
        mesh_resolution=64,
        eval_views=4,
    )
    return generate(config, progress=False).metrics["target"]


def scores(target) -> tuple[float, float]:
    return target["silhouette"]["iou"], target.get("chamfer_l1", float("inf"))


def test_target_guidance_recovers_spot(tmp_path):
    iou, chamfer = scores(run(tmp_path, "good"))
    assert iou >= IOU and chamfer < CHAMFER, (iou, chamfer)


def _flipped(renders, grad):
    return guidance_loss(renders, -grad)


def _detached(renders, grad):
    return guidance_loss(renders.detach().requires_grad_(True), grad)


def _unweighted(name, alpha_bar):
    return torch.zeros_like(alpha_bar)


@pytest.mark.parametrize(
    "where, name, broken",
    [
        (train_module, "guidance_loss", _flipped),
        (sds, "weighting", _unweighted),
        (train_module, "guidance_loss", _detached),
    ],
    ids=["wrong-sign", "no-weighting", "detached-render"],
)
def test_broken_loops_fail_the_thresholds(tmp_path, monkeypatch, where, name, broken):
    monkeypatch.setattr(where, name, broken)
    iou, chamfer = scores(run(tmp_path, "broken"))
    assert iou < IOU or chamfer >= CHAMFER, (iou, chamfer)
