"""Rendering a field along rays: pruning keeps what compositing uses, images survive a small
sample budget, and the image metrics."""

import math

import pytest
import torch

from fields3d.errors import InputError
from fields3d.render import GridSpec, RenderSettings, psnr, render_image, render_rays, ssim
from fields3d.render.march import march_rays
from fields3d.render.volume import prune_samples


class Ball(torch.nn.Module):
    """An opaque coloured ball of radius 0.5: density 50 inside, colour from the position."""

    def density(self, x):
        return (x.norm(dim=1) < 0.5).to(x.dtype) * 50.0

    def forward(self, x, dirs):
        return self.density(x), (x * 0.5 + 0.5).clamp(0, 1)


BOX = GridSpec.from_aabb([[-1, -1, -1], [1, 1, 1]])


def rays(n=64):
    g = torch.Generator().manual_seed(0)
    origins = torch.tensor([[0.0, 0.0, -3.0]]).expand(n, 3).contiguous()
    targets = torch.rand(n, 3, generator=g) * 1.2 - 0.6
    targets[:, 2] = 0
    return origins, torch.nn.functional.normalize(targets - origins, dim=1)


def test_pruning_changes_nothing_but_the_work():
    o, d = rays()
    field = Ball()
    full = render_rays(field, BOX, o, d, RenderSettings(step=0.01, prune=False))
    pruned = render_rays(field, BOX, o, d, RenderSettings(step=0.01, prune=True))
    torch.testing.assert_close(pruned["color"], full["color"], atol=1e-4, rtol=0)
    torch.testing.assert_close(pruned["opacity"], full["opacity"], atol=1e-4, rtol=0)
    assert pruned["n_samples"] < 0.8 * full["n_samples"]
    samples = march_rays(o, d, BOX, step=0.01)
    kept = prune_samples(field, samples, o, d, 1e-4)
    assert kept.n_rays == samples.n_rays and kept.n_samples == pruned["n_samples"]


def test_images_render_every_ray_under_a_small_budget():
    o, d = rays(100)
    field = Ball()
    big = render_image(field, BOX, o, d, 10, 10, RenderSettings(step=0.01), 1.0)
    small = render_image(
        field,
        BOX,
        o,
        d,
        10,
        10,
        RenderSettings(step=0.01, max_samples=300, prune=False),
        1.0,
        chunk=64,
    )
    torch.testing.assert_close(small["color"], big["color"], atol=1e-4, rtol=0)
    assert small["color"].shape == (10, 10, 3)
    with pytest.raises(InputError, match="^one ray needs more than max_samples=10 samples"):
        render_image(
            field, BOX, o, d, 10, 10, RenderSettings(step=0.01, max_samples=10, prune=False), 1.0
        )


def test_a_colour_per_pixel_is_split_with_the_chunks():
    """A (H * W, 3) background went whole to every chunk of rays and was refused past the first."""
    o, d = rays(100)
    field = Ball()
    bg = torch.rand(100, 3, generator=torch.Generator().manual_seed(1))
    settings = RenderSettings(step=0.01, max_samples=300, prune=False)
    out = render_image(field, BOX, o, d, 10, 10, settings, bg, chunk=16)
    black = render_image(field, BOX, o, d, 10, 10, settings, 0.0, chunk=16)
    expected = black["color"] + (1 - black["opacity"])[..., None] * bg.view(10, 10, 3)
    torch.testing.assert_close(out["color"], expected, atol=1e-6, rtol=0)
    assert (black["opacity"] < 0.5).any()  # some pixels miss the ball and show the background


def test_psnr_and_ssim():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(32, 32, 3, generator=g)
    assert psnr(a, a) == math.inf and ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-4)
    noisy = (a + 0.2 * torch.randn(32, 32, 3, generator=g)).clamp(0, 1)
    assert ssim(a, noisy) < 0.9
    with pytest.raises(InputError) as err:
        psnr(a, a[:, :, :2])
    assert (
        str(err.value)
        == "prediction and target must be (H, W, C) pictures of one shape, got (32, 32, 3) and (32, 32, 2)"
    )
    with pytest.raises(InputError) as err:
        ssim(a[:5], a[:5])
    assert str(err.value) == "ssim needs pictures of at least 11x11 pixels, got (5, 32)"


def test_a_background_field_shows_where_the_field_is_clear_and_learns():
    o, d = rays(64)
    sky = torch.nn.Linear(3, 3)  # colour from the direction, trainable
    out = render_rays(
        Ball(), BOX, o, d, RenderSettings(step=0.01), background=lambda v: torch.sigmoid(sky(v))
    )
    bg = torch.sigmoid(sky(d))
    clear, solid = out["opacity"] < 1e-3, out["opacity"] > 1 - 1e-3
    assert clear.any() and solid.any()
    torch.testing.assert_close(out["color"][clear], bg[clear], atol=1e-3, rtol=0)
    black = render_rays(
        Ball(), BOX, o, d, RenderSettings(step=0.01)
    )  # premultiplied: nothing behind
    torch.testing.assert_close(out["color"], black["color"] + (1 - black["opacity"])[:, None] * bg)
    out["color"][clear].sum().backward()
    assert sky.weight.grad is not None and sky.weight.grad.abs().sum() > 0
    with pytest.raises(InputError) as err:
        render_rays(Ball(), BOX, o, d, RenderSettings(step=0.01), background=lambda v: v[:, :2])
    assert str(err.value) == (
        "a background field must map the (R, 3) ray directions to (R, 3) colours; for 64 rays "
        "it returned (64, 2)"
    )
