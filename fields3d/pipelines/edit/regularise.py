"""Vox-E's volumetric regulariser: the edited density grid stays correlated with the original.

    L_reg = 1 - corr(sigma_orig, sigma_edit),
    corr(a, b) = sum (a - mean a)(b - mean b) / sqrt(sum (a - mean a)^2 sum (b - mean b)^2),

Pearson's correlation of the two ``(R, R, R)`` density grids (Sella et al., ICCV 2023, eq. 4).
With ``window=None`` (the default) it is taken over the whole grid, as in the paper's equation;
with ``window=w`` the grid is cut into ``w^3`` blocks, each block's correlation is computed and
``L_reg`` is the mean of ``1 - corr`` over the blocks where the original's density varies
(the paper's discussion of local structure): a change in one place then cannot be paid for by
agreement elsewhere, and matter added where the original was empty (or uniform) costs nothing. A correlation does not care about scale or offset, so the edit may make the object
denser or lighter everywhere at no cost; what it penalises is structure moved or lost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..._checks import check_int
from ...errors import InputError

EPS = 1e-8


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson's correlation of two tensors of one shape, over all their elements (a scalar).

    Example:
        >>> import torch
        >>> from fields3d.pipelines.edit.regularise import correlation
        >>> a = torch.arange(8.0)
        >>> float(correlation(a, 3 * a + 1)), float(correlation(a, -a))
        (1.0, -1.0)
    """
    a, b = a.flatten().double(), b.flatten().double()
    da, db = a - a.mean(), b - b.mean()
    return ((da * db).sum() / ((da.square().sum() * db.square().sum()).sqrt() + EPS)).float()


def correlation_loss(
    original: torch.Tensor, edited: torch.Tensor, window: int | None = None
) -> torch.Tensor:
    """``1 - corr(original, edited)`` of two ``(R, R, R)`` density grids (module docstring),
    differentiable with respect to ``edited``.

    Args:
        original: ``(R, R, R)`` float, the reference (no gradient needed).
        edited: ``(R, R, R)`` float, the grid being edited.
        window: None (one correlation over the grid) or the side of the blocks, 2 to R.

    Returns:
        A scalar in ``[0, 2]``.

    Example:
        >>> import torch
        >>> from fields3d.pipelines.edit.regularise import correlation_loss
        >>> base = torch.rand(8, 8, 8)
        >>> float(correlation_loss(base, 2 * base)) < 1e-6  # scaled: the same structure
        True
        >>> moved = torch.roll(base, 3, dims=0)
        >>> float(correlation_loss(base, moved)) > 0.5, float(correlation_loss(base, moved, 4)) > 0.5
        (True, True)
    """
    if original.shape != edited.shape or original.dim() != 3:
        raise InputError(
            f"original and edited must be density grids of one shape (R, R, R), got "
            f"{tuple(original.shape)} and {tuple(edited.shape)}"
        )
    if window is None:
        return 1 - correlation(original.detach(), edited)
    check_int("window", window, 2, original.shape[0])
    a = original.detach().float()[None, None]
    b = edited.float()[None, None]
    pool = lambda t: F.avg_pool3d(t, window, window, ceil_mode=True)  # noqa: E731
    ma, mb = pool(a), pool(b)
    cov = pool(a * b) - ma * mb
    va, vb = (pool(a * a) - ma**2).clamp_min(0), (pool(b * b) - mb**2).clamp_min(0)
    corr = cov / ((va * vb).sqrt() + EPS)
    busy = va > EPS * (1 + ma**2)  # blocks where the original has structure
    if not bool(busy.any()):
        return corr.new_zeros(())
    return (1 - corr[busy]).mean()
