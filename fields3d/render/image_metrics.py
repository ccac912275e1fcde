"""Image quality metrics on float pictures in ``[0, 1]``: PSNR and SSIM (Wang et al. 2004)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import InputError


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape or prediction.dim() != 3:
        raise InputError(
            f"prediction and target must be (H, W, C) pictures of one shape, got {tuple(prediction.shape)} "
            f"and {tuple(target.shape)}"
        )


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of ``(H, W, C)`` pictures with values in ``[0, 1]``."""
    _check_pair(prediction, target)
    mse = float(torch.mean((prediction.float() - target.float()) ** 2))
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def _gaussian(size: int, sigma: float, device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(prediction: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM of ``(H, W, C)`` pictures in ``[0, 1]``: an 11x11 Gaussian window (sigma 1.5),
    ``K1 = 0.01``, ``K2 = 0.03``, valid windows only, averaged over channels (as the NeRF papers'
    evaluation code does)."""
    _check_pair(prediction, target)
    if min(prediction.shape[:2]) < window:
        raise InputError(f"ssim needs pictures of at least {window}x{window} pixels, got {tuple(prediction.shape[:2])}")
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
