"""The pipelines' Adam: torch.optim.Adam's update value for value, and a GridPull fit that uses it
never imports torch._dynamo (what torch.optim's first step costs: 1.7 s of CPU)."""

import subprocess
import sys

import pytest
import torch

from fields3d.pipelines._adam import Adam


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_steps_as_torch_optim_adam_with_an_exponential_schedule(dtype):
    gen = torch.Generator().manual_seed(0)
    ours = torch.randn(257, 3, generator=gen, dtype=dtype).requires_grad_()
    theirs = ours.detach().clone().requires_grad_()
    start = ours.detach().clone()
    reference = torch.optim.Adam([theirs], lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    schedule = torch.optim.lr_scheduler.ExponentialLR(reference, 0.97)
    opt = Adam(ours, 0.01, betas=(0.8, 0.99), eps=1e-6)
    for step in range(40):
        for x, o in ((ours, opt), (theirs, reference)):
            o.zero_grad()
            (x.sin() * x**3).sum().backward()
            o.step()
        schedule.step()
        opt.lr *= 0.97
        assert torch.equal(ours, theirs), step
    moved = (ours - start).abs()
    assert (moved > 0).all() and moved.median() > 0.1  # the steps did something
    opt.zero_grad()
    assert ours.grad is None
    before = ours.detach().clone()
    opt.step()  # no gradient: nothing moves
    assert torch.equal(ours, before)


_FIT_WITHOUT_DYNAMO = """
import sys
import numpy as np
from fields3d.pipelines.recon.gridpull import GridPullConfig, fit_gridpull
rng = np.random.default_rng(0)
points = rng.standard_normal((3000, 3))
points = (0.6 * points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
info = {}
fit_gridpull(points, GridPullConfig(resolution=32, coarse_resolution=24, steps=3), info=info)
assert info["steps_run"] == 3, info
print("torch._dynamo" in sys.modules)
"""


def test_a_gridpull_fit_does_not_import_torch_dynamo():
    out = subprocess.run(
        [sys.executable, "-c", _FIT_WITHOUT_DYNAMO], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stdout + out.stderr
