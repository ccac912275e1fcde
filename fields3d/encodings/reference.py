"""Pure-torch reference encodings: the same layout, hashing and conventions as the core, written
plainly with torch ops so autograd supplies every derivative. Slow; for tests and benchmarks."""

from __future__ import annotations

import torch

from .hash_grid import PRIMES, HashGridConfig

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


def hash_grid_reference(x: torch.Tensor, params: torch.Tensor, config: HashGridConfig) -> torch.Tensor:
    """Reference of :func:`fields3d.encodings.hash_grid_encode`: ``(N, D)`` -> ``(N, L*F)``."""
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
            bits = torch.tensor([(corner >> d) & 1 for d in range(config.n_input_dims)], device=x.device)
            w = torch.prod(torch.where(bits.bool(), s, 1.0 - s), dim=1, keepdim=True)
            out = out + w * params[_corner_rows(base + bits, level, config)]
        features.append(out)
    y = torch.cat(features, dim=1)
    return torch.where(nan, torch.full_like(y, float("nan")), y)
