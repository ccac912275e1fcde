"""PSNR and SSIM take float pictures in [0, 1]: what they refuse, with the exact messages, and
what they score (values checked in tests/render/test_volume.py)."""

from __future__ import annotations

import math

import pytest
import torch

from fields3d.errors import InputError
from fields3d.render.image_metrics import psnr, ssim

G = torch.Generator().manual_seed(0)
A = torch.rand(16, 16, 3, generator=G)
B = (A + 0.05 * torch.rand(16, 16, 3, generator=G)).clamp(0, 1)
A8 = (A * 255).round().to(torch.uint8)
TO_FLOAT = "; convert it first (an 8-bit picture: .float() / 255)"
WINDOW = "window must be an odd integer >= 3 (pixels on a side of the Gaussian window; 11 is the standard), got "
SIGMA = "sigma must be a finite number > 0 (the window's standard deviation in pixels; 1.5 is the standard), got "

PAIR_ERRORS = [
    ((A8, A8), "prediction must be a float picture with values in [0, 1], got uint8" + TO_FLOAT),
    ((A, A8), "target must be a float picture with values in [0, 1], got uint8" + TO_FLOAT),
    (
        (A > 0.5, B > 0.5),
        "prediction must be a float picture with values in [0, 1], got bool" + TO_FLOAT,
    ),
    (([0.5], A), "prediction must be an (H, W, C) float tensor with values in [0, 1], got list"),
    (
        (A, B.to("meta")),
        "target must be on cpu like prediction, got meta; move it with .to(device)",
    ),
    (
        (A[:, :, :0], B[:, :, :0]),
        "prediction and target must hold at least one pixel and channel, got (16, 16, 0)",
    ),
]


@pytest.mark.parametrize("metric", [psnr, ssim])
@pytest.mark.parametrize("args,message", PAIR_ERRORS, ids=[m[:40] for _, m in PAIR_ERRORS])
def test_pictures_that_are_not_float_pictures_are_refused(metric, args, message):
    # psnr scored 8-bit pictures as if 255 were 1.0 (-17 dB for a 31 dB pair)
    with pytest.raises(InputError) as err:
        metric(*args)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(window=0), WINDOW + "0"),  # died in oneDNN's conv2d
        (dict(window=-1), WINDOW + "-1"),
        (dict(window=1), WINDOW + "1"),
        (dict(window=4), WINDOW + "4"),
        (dict(window=11.0), WINDOW + "11.0"),
        (dict(window=True), WINDOW + "True"),
        (dict(sigma=0), SIGMA + "0"),
        (dict(sigma=-1.5), SIGMA + "-1.5"),
        (dict(sigma=math.inf), SIGMA + "inf"),
        (dict(sigma=math.nan), SIGMA + "nan"),
        (dict(sigma=10**400), SIGMA + str(10**400)),
        (dict(sigma="1.5"), SIGMA + "'1.5'"),
    ],
)
def test_ssim_window_and_sigma(kwargs, message):
    with pytest.raises(InputError) as err:
        ssim(A, B, **kwargs)
    assert str(err.value) == message


def test_ssim_window_must_fit_the_picture():
    with pytest.raises(InputError) as err:
        ssim(A, B, window=17)
    assert str(err.value) == "ssim needs pictures of at least 17x17 pixels, got (16, 16)"


def test_float_pictures_of_any_precision_score_alike_and_nan_scores_nan():
    assert psnr(A.double(), B) == pytest.approx(psnr(A, B), abs=1e-9)
    assert psnr(A.half(), B.half()) == pytest.approx(psnr(A, B), abs=0.01)
    assert ssim(A, B, window=3) == pytest.approx(ssim(A.double(), B.double(), window=3), abs=1e-6)
    assert 0 < ssim(A, B, window=3, sigma=1e-30) < 1  # a tiny sigma: a one-pixel window, not 0 / 0
    holed = A.clone()
    holed[3, 4, 1] = math.nan
    assert math.isnan(psnr(holed, B)) and math.isnan(
        ssim(holed, B)
    )  # a NaN never scores as a number
