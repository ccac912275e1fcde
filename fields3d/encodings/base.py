"""The interface every encoding implements (tiny-cuda-nn's shape: n_input_dims, n_output_dims, forward)."""

from __future__ import annotations

import torch
from torch import nn


class Encoding(nn.Module):
    """Maps positions ``(N, n_input_dims)`` to features ``(N, n_output_dims)``."""

    n_input_dims: int
    n_output_dims: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError
