"""Image quality metrics on float pictures in ``[0, 1]``: PSNR and SSIM (Wang et al. 2004).

Both take ``(H, W, C)`` floating-point pictures (any float dtype; they are scored in float32) of
one shape and device. Integer pictures (8-bit: 0..255) are refused rather than scored as if 255
were 1.0: convert them with ``.float() / 255``. A NaN anywhere gives a NaN score (not a number
that looks valid), so such pictures are scored, not refused.
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F

from .._checks import dtype_str, is_int, is_number
from ..errors import InputError

DEFAULT_WINDOW = 11  # SSIM's Gaussian window, pixels on a side
DEFAULT_SIGMA = 1.5  # its standard deviation in pixels


def _check_picture(name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        raise InputError(
            f"{name} must be an (H, W, C) float tensor with values in [0, 1], got {type(t).__name__}"
        )
    if not t.is_floating_point():
        raise InputError(
            f"{name} must be a float picture with values in [0, 1], got {dtype_str(t.dtype)}; "
            "convert it first (an 8-bit picture: .float() / 255)"
        )


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    _check_picture("prediction", prediction)
    _check_picture("target", target)
    if prediction.shape != target.shape or prediction.dim() != 3:
        raise InputError(
            f"prediction and target must be (H, W, C) pictures of one shape, got {tuple(prediction.shape)} "
            f"and {tuple(target.shape)}"
        )
    if prediction.numel() == 0:
        raise InputError(
            f"prediction and target must hold at least one pixel and channel, "
            f"got {tuple(prediction.shape)}"
        )
    if target.device != prediction.device:
        raise InputError(
            f"target must be on {prediction.device} like prediction, got {target.device}; "
            "move it with .to(device)"
        )


def _check_window(window, sigma) -> None:
    if not is_int(window) or window < 3 or window % 2 == 0:
        raise InputError(
            f"window must be an odd integer >= 3 (pixels on a side of the Gaussian window; "
            f"{DEFAULT_WINDOW} is the standard), got {window!r}"
        )
    if not is_number(sigma) or not 0 < sigma <= sys.float_info.max:
        raise InputError(
            f"sigma must be a finite number > 0 (the window's standard deviation in pixels; "
            f"{DEFAULT_SIGMA} is the standard), got {sigma!r}"
        )


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of ``(H, W, C)`` float pictures with values in ``[0, 1]``:
    ``-10 log10(mean((prediction - target)^2))`` (``inf`` for equal pictures).

    Args:
        prediction, target: ``(H, W, C)`` float pictures (any float dtype, scored in float32) of
            one shape and device.

    Returns:
        The score as a Python float.

    Example:
        >>> import torch
        >>> from fields3d.render import psnr
        >>> grey = torch.full((4, 4, 3), 0.5)
        >>> round(psnr(grey + 0.1, grey), 2)  # mean squared error 0.01
        20.0
        >>> psnr(grey, grey)
        inf
    """
    _check_pair(prediction, target)
    mse = float(torch.mean((prediction.float() - target.float()) ** 2))
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def _gaussian(size: int, sigma: float, device) -> torch.Tensor:
    # float64 and x / sigma: no 0 / 0 at the centre for a sigma whose square underflows
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / float(sigma)) ** 2)
    return (g / g.sum()).to(device=device, dtype=torch.float32)


def ssim(
    prediction: torch.Tensor,
    target: torch.Tensor,
    window: int = DEFAULT_WINDOW,
    sigma: float = DEFAULT_SIGMA,
) -> float:
    """Mean SSIM of ``(H, W, C)`` float pictures in ``[0, 1]``: a ``window`` x ``window`` Gaussian
    window (an odd size, 11 by default; sigma 1.5), ``K1 = 0.01``, ``K2 = 0.03``, valid windows only,
    averaged over channels (as the NeRF papers' evaluation code does).

    Per window: ``((2 mu_x mu_y + c1) (2 s_xy + c2)) / ((mu_x^2 + mu_y^2 + c1) (s_x^2 + s_y^2 + c2))``
    with ``c1 = K1^2``, ``c2 = K2^2`` and Gaussian-weighted means ``mu``, variances and covariance.

    Args:
        prediction, target: ``(H, W, C)`` float pictures (any float dtype, scored in float32) of
            one shape and device, at least ``window`` pixels on each side.
        window: odd integer >= 3. sigma: the window's standard deviation in pixels (> 0).

    Returns:
        The score (1 for equal pictures) as a Python float.

    Example:
        >>> import torch
        >>> from fields3d.render import ssim
        >>> _ = torch.manual_seed(0)
        >>> picture = torch.rand(16, 16, 3)
        >>> round(ssim(picture, picture), 4)
        1.0
        >>> round(ssim(picture, (picture + 0.2 * torch.rand(16, 16, 3)).clamp(0, 1)), 2)
        0.97
    """
    _check_pair(prediction, target)
    _check_window(window, sigma)
    if min(prediction.shape[:2]) < window:
        raise InputError(
            f"ssim needs pictures of at least {window}x{window} pixels, got {tuple(prediction.shape[:2])}"
        )
    x = prediction.float().permute(2, 0, 1).unsqueeze(1)  # (C, 1, H, W)
    y = target.float().permute(2, 0, 1).unsqueeze(1)
    g = _gaussian(window, sigma, x.device)
    kernel = (g[:, None] * g[None, :])[None, None]

    def blur(t):
        return F.conv2d(t, kernel)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())
