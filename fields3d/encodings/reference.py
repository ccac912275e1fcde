"""Pure-torch reference encodings: the same layout, hashing and conventions as the core, written
plainly with torch ops so autograd supplies every derivative. Slow; for tests and benchmarks."""

from __future__ import annotations

import torch

from ._levels import PRIMES
from .dense_grid import DenseGridConfig
from .hash_grid import HashGridConfig
from .rbf import RBFConfig
from .simplex import SimplexGridConfig, skew_factor
from .triplane import TriPlaneConfig, aggregate_planes

_U32 = 0xFFFFFFFF


def _corner_rows(corner: torch.Tensor, level, config: HashGridConfig) -> torch.Tensor:
    """Table rows of integer grid points ``corner`` (N, D) at one level."""
    if level.hashed:
        index = torch.zeros_like(corner[:, 0])
        for d in range(config.n_input_dims):
            index = index ^ ((corner[:, d] * PRIMES[d]) & _U32)
    else:
        index = sum(corner[:, d] * level.resolution**d for d in range(config.n_input_dims))
    return level.offset + index % level.size


def hash_grid_reference(
    x: torch.Tensor, params: torch.Tensor, config: HashGridConfig
) -> torch.Tensor:
    """Reference of :func:`fields3d.encodings.hash_grid_encode`: ``(N, D)`` -> ``(N, L*F)``.

    The same layout, hashing, clamping and NaN rule as the core, in plain torch ops (autograd
    supplies every derivative). Slow: for tests and benchmarks.

    Args:
        x: ``(N, config.n_input_dims)`` positions in ``[0, 1]``, float32 or float64.
        params: ``(config.n_entries, config.n_features_per_level)`` table, same dtype and device.
        config: the grid's :class:`~fields3d.encodings.HashGridConfig`.

    Returns:
        ``(N, config.n_output_dims)`` features, level-major, in ``x``'s dtype.

    Example:
        >>> import torch
        >>> from fields3d.encodings import HashGridConfig, hash_grid_encode
        >>> from fields3d.encodings.reference import hash_grid_reference
        >>> cfg = HashGridConfig(n_input_dims=2, n_levels=2, log2_hashmap_size=8, base_resolution=4)
        >>> gen = torch.Generator().manual_seed(0)
        >>> shape = (cfg.n_entries, cfg.n_features_per_level)  # (n_entries, F)
        >>> params = torch.randn(shape, generator=gen, dtype=torch.float64)
        >>> x = torch.tensor([[0.1, 0.9], [0.5, 0.5], [float("nan"), 0.5]], dtype=torch.float64)
        >>> y = hash_grid_reference(x, params, cfg)  # (N, L * F)
        >>> y.shape, bool(y[2].isnan().all())  # a NaN coordinate: NaN features
        (torch.Size([3, 4]), True)
        >>> torch.allclose(y[:2], hash_grid_encode(x, params, cfg)[:2])
        True
    """
    nan = torch.isnan(x).any(dim=1, keepdim=True)
    xc = torch.where(nan, torch.zeros_like(x), x).clamp(0.0, 1.0)
    features = []
    for level in config.levels:
        pos = xc * level.scale + 0.5
        base = torch.floor(pos).detach()
        frac = pos - base
        s = frac if config.interpolation == "linear" else frac * frac * (3.0 - 2.0 * frac)
        base = base.long()
        out = 0
        for corner in range(2**config.n_input_dims):
            bits = torch.tensor(
                [(corner >> d) & 1 for d in range(config.n_input_dims)], device=x.device
            )
            w = torch.prod(torch.where(bits.bool(), s, 1.0 - s), dim=1, keepdim=True)
            out = out + w * params[_corner_rows(base + bits, level, config)]
        features.append(out)
    y = torch.cat(features, dim=1)
    return torch.where(nan, torch.full_like(y, float("nan")), y)


def _masked(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows with a NaN, x with those rows zeroed and every coordinate clamped to [0, 1])."""
    nan = torch.isnan(x).any(dim=1, keepdim=True)
    return nan, torch.where(nan, torch.zeros_like(x), x).clamp(0.0, 1.0)


def _with_nan(y: torch.Tensor, nan: torch.Tensor) -> torch.Tensor:
    return torch.where(nan, torch.full_like(y, float("nan")), y)


def _multilinear(
    xc: torch.Tensor, table: torch.Tensor, resolution: int, interpolation: str
) -> torch.Tensor:
    """Corner-aligned multilinear interpolation of a dense ``(R^d, F)`` block at ``xc`` (N, d)."""
    d, r = xc.shape[1], resolution
    pos = xc * (r - 1)
    base = torch.floor(pos).clamp(max=r - 2).detach()
    frac = pos - base
    s = frac if interpolation == "linear" else frac * frac * (3.0 - 2.0 * frac)
    base = base.long()
    out = 0
    for corner in range(2**d):
        bits = torch.tensor([(corner >> k) & 1 for k in range(d)], device=xc.device)
        w = torch.prod(torch.where(bits.bool(), s, 1.0 - s), dim=1, keepdim=True)
        rows = sum((base[:, k] + bits[k]) * r**k for k in range(d))
        out = out + w * table[rows]
    return out


def dense_grid_reference(
    x: torch.Tensor, params: torch.Tensor, config: DenseGridConfig
) -> torch.Tensor:
    """Reference of :func:`fields3d.encodings.dense_grid_encode`: ``(N, d)`` -> ``(N, F)``."""
    nan, xc = _masked(x)
    return _with_nan(_multilinear(xc, params, config.resolution, config.interpolation), nan)


def triplane_reference(
    x: torch.Tensor, params: torch.Tensor, config: TriPlaneConfig
) -> torch.Tensor:
    """Reference of :func:`fields3d.encodings.triplane_encode`: ``(N, 3)`` -> ``(N, n_output_dims)``."""
    nan, xc = _masked(x)
    planes = []
    for level in config.levels:
        block = params[level.offset : level.offset + level.size]
        planes.append(
            _multilinear(xc[:, list(level.axes)], block, level.resolution, config.interpolation)
        )
    return _with_nan(aggregate_planes(torch.cat(planes, dim=1), config), nan)


def _simplex_rows(vertex: torch.Tensor, level, d: int, lut: torch.Tensor | None) -> torch.Tensor:
    if level.hashed:
        index = torch.zeros_like(vertex[:, 0])
        for k in range(d):
            index = index ^ ((vertex[:, k] * PRIMES[k]) & _U32)
        return level.offset + index % level.size
    # direct: the row lookup over the first d - 1 coordinates, then the last one
    prefix = sum(vertex[:, k] * level.resolution**k for k in range(d - 1))
    row = lut.to(vertex.device)[prefix] + vertex[:, d - 1]
    return level.offset + torch.where((row >= 0) & (row < level.size), row, 0)


def simplex_grid_reference(
    x: torch.Tensor, params: torch.Tensor, config: SimplexGridConfig
) -> torch.Tensor:
    """Reference of :func:`fields3d.encodings.simplex_grid_encode`: ``(N, d)`` -> ``(N, L*F)``."""
    nan, xc = _masked(x)
    d, k = config.n_input_dims, skew_factor(config.n_input_dims)
    eye = torch.eye(d, dtype=torch.long, device=x.device)
    features = []
    for level, lut in zip(config.levels, config.level_luts):
        p = xc * level.scale
        q = p + k * p.sum(dim=1, keepdim=True)
        base = torch.floor(q).detach()
        f_sorted, order = torch.sort(q - base, dim=1, descending=True, stable=True)
        upper = torch.cat([torch.ones_like(f_sorted[:, :1]), f_sorted], dim=1)
        lower = torch.cat([f_sorted, torch.zeros_like(f_sorted[:, :1])], dim=1)
        weights = upper - lower  # (N, d+1): w_0 = 1 - f_pi1, ..., w_d = f_pid
        vertex, out = base.long(), 0
        for m in range(d + 1):
            if m > 0:
                vertex = vertex + eye[order[:, m - 1]]
            out = out + weights[:, m : m + 1] * params[_simplex_rows(vertex, level, d, lut)]
        features.append(out)
    return _with_nan(torch.cat(features, dim=1), nan)


def rbf_reference(
    x: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    config: RBFConfig,
) -> torch.Tensor:
    """Reference of :func:`fields3d.encodings.rbf.rbf_encode`: ``(N, D)`` -> ``(N, F)``.

    Brute force over all M bases, no core: every basis' shape as a matrix ``A_j`` (``s_j I``,
    ``diag(s_j)`` or ``tril(S_j)``), every kernel value, then a mask keeping the K nearest centers
    (``topk`` of the Euclidean distances). Memory ``N x M x F``: small cases only.
    """
    nan = torch.isnan(x).any(dim=1, keepdim=True)
    xs = torch.where(nan, torch.zeros_like(x), x)
    diff = xs[:, None, :] - centers[None]  # (N, M, D)
    near = diff.detach().square().sum(-1).topk(config.k, dim=1, largest=False).indices
    mask = torch.zeros(diff.shape[:2], dtype=x.dtype, device=x.device).scatter_(1, near, 1.0)
    eye = torch.eye(config.n_input_dims, dtype=x.dtype, device=x.device)
    if config.shape == "isotropic":
        a = shapes[:, None, None] * eye
    elif config.shape == "diagonal":
        a = torch.diag_embed(shapes)
    else:
        a = torch.tril(shapes)
    r2 = torch.einsum("mij,nmj->nmi", a, diff).square().sum(-1)  # (N, M)
    phi = 1.0 / (1.0 + r2) if config.kernel == "inverse_quadratic" else torch.exp(-r2)
    basis = phi[..., None].expand(-1, -1, config.n_features)
    if config.frequencies:
        f = config.frequencies
        omega = torch.tensor(
            [f[c % len(f)] for c in range(config.n_features)], dtype=x.dtype, device=x.device
        )
        basis = torch.sin(basis * omega)
    y = torch.einsum("nm,nmf,mf->nf", mask, basis, weights)
    return torch.where(nan, torch.full_like(y, float("nan")), y)
