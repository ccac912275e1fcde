"""The image-fit benchmark's parts: the generated large image, scoring on a pixel subset and on
every pixel (streamed), the crop picture, and the step budget. (Its timings are not tested.)"""

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import image_fit
from _mandelbrot import mandelbrot

from fields3d.fields import ImageField
from fields3d.pipelines.fit_image import psnr

SMALL_GRID = {
    "type": "hash_grid",
    "n_input_dims": 2,
    "n_levels": 4,
    "log2_hashmap_size": 10,
    "base_resolution": 4,
}


def test_mandelbrot_is_reproducible_with_detail_and_an_inside():
    a, b = mandelbrot(96), mandelbrot(96)
    assert a.shape == (96, 96, 3) and torch.equal(a, b)
    assert 0.0 <= a.min().item() and a.max().item() <= 1.0
    black = (a.sum(dim=2) == 0).float().mean().item()
    assert 0.2 < black < 0.5, f"{black:.2f} of the pixels are inside the set"
    assert a[a.sum(dim=2) > 0].std(dim=0).min().item() > 0.1  # the outside is coloured, not flat


def test_mandelbrot_rejects_a_bad_side():
    with pytest.raises(ValueError, match=r"^side must be a positive integer, got 0$"):
        mandelbrot(0)


def test_full_score_streams_every_pixel_like_a_render(monkeypatch):
    monkeypatch.setattr(image_fit, "CHUNK", 1000)  # several chunks, the last one partial
    target = torch.rand(50, 70, 3, generator=torch.Generator().manual_seed(0))
    field = ImageField(SMALL_GRID, 3, device="cpu")
    score = image_fit.Scorer(target)
    assert score.subset is None
    expected = psnr(field.render(50, 70), target)
    assert score(field) == pytest.approx(expected, abs=1e-4)
    assert score.full(field) == pytest.approx(expected, abs=1e-4)


def test_large_images_are_scored_on_a_fixed_subset_that_tracks_the_full_score(monkeypatch):
    monkeypatch.setattr(image_fit, "EVAL_PIXELS", 2000)
    target = mandelbrot(80)  # 6400 pixels > 2000
    score = image_fit.Scorer(target)
    assert (
        score.subset is not None
        and len(score.subset) == 2000
        and len(score.subset.unique()) == 2000
    )
    assert torch.equal(score.subset, image_fit.Scorer(target).subset)  # the same pixels every time
    field = ImageField(SMALL_GRID, 3, device="cpu")
    # the subset mirrors the full image: its PSNR is close, not equal
    assert math.isclose(score(field), score.full(field), abs_tol=0.5)
    assert score(field) != score.full(field)


def test_crop_renders_the_middle_pixels(tmp_path):
    target = torch.rand(300, 400, 3, generator=torch.Generator().manual_seed(1))
    assert image_fit.crop_box(target) == (22, 72, 256)
    assert image_fit.crop_box(target[:100, :120]) == (0, 10, 100)
    field = ImageField(SMALL_GRID, 3, device="cpu")
    crop = image_fit.render_crop(field, (300, 400), (22, 72, 256))
    full = field.render(300, 400).clamp(0, 1)
    torch.testing.assert_close(crop, full[22:278, 72:328], rtol=0, atol=1e-6)
    path = image_fit.save_crops(tmp_path / "crops.png", target, [("hash_grid", crop)])
    from PIL import Image

    with Image.open(path) as im:
        assert im.size == (512, 256)


def test_a_step_budget_trains_exactly_that_many_steps_with_the_decays(monkeypatch):
    args = image_fit.parse_args(["--steps", "40", "--batch-size", "64"])
    target = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2))
    score = image_fit.Scorer(target)
    seen = []
    real_step = torch.optim.Adam.step

    def step(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    result, _ = image_fit.train_for(SMALL_GRID, target, score, args, torch.device("cpu"))
    assert result["steps"] == 40 and len(seen) == 40
    assert [c["steps"] for c in result["curve"]] == [2 * i for i in range(21)]
    lr = args.lr
    # x0.33 once 50%, 75% and 90% of the steps are done (after steps 20, 30 and 36)
    assert seen[:20] == [lr] * 20 and seen[20] == pytest.approx(lr * 0.33)
    assert seen[30] == pytest.approx(lr * 0.33**2) and seen[36] == pytest.approx(lr * 0.33**3)


def test_a_step_budget_needs_one_step_per_checkpoint(capsys):
    with pytest.raises(SystemExit):
        image_fit.parse_args(["--steps", "5"])
    assert "--steps must be at least 20 (one per checkpoint), got 5" in capsys.readouterr().err
