"""Coordinate-Aware Modulation (CAM; Lee, Rho, Nam, Ko & Park, ICLR 2024): ``CoordinateModulation``.

Instead of feeding a grid's features only into an MLP's input, a small grid over the coordinates
gives each hidden layer a scale and a shift for its units: the pre-activation ``h`` of hidden
layer ``i`` becomes

    h <- norm(h) * (1 + gamma_i(x)) + beta_i(x)

before the activation. ``norm`` normalises each point's units to zero mean and unit variance
(no learned affine: the grid's scale and shift take its place), as the paper's code does with
``instance_norm`` over a point's channels; ``gamma_i`` and ``beta_i`` are one number each per
point and layer, shared by the layer's units (the paper's code keeps a single channel for each).

The grid is our core's tri-plane (``"triplane"``, three planes summed, as the paper's NeRF code
uses planes) or dense 3-D grid (``"dense_grid"``), with ``2 * n_layers`` features. The paper's
NeRF code multiplies its planes with the scale planes at 1 and the shift planes at 0, where the
shift's gradient is a product of zeros; the planes here are summed and start near 0 instead
(``1 + gamma`` and ``beta``), so the modulation starts as the identity and every plane learns.
Both encodings have a double backward in the core, so a loss on ``grad f`` (the eikonal term)
trains the grid too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_size
from ..encodings import DenseGrid, TriPlane
from ..errors import InputError

GRIDS = ("triplane", "dense_grid")
#: Modulated layers: the tri-plane and the dense grid hold at most 32 features (2 a layer).
MAX_MODULATED_LAYERS = 16
#: Grid vertices per axis: the dense grid's R^3 rows stay under its 2^30 limit.
MAX_CAM_RESOLUTION = 1024
NORM_EPS = 1e-5  # instance_norm's, as the paper's code


def cam_normalise(h: torch.Tensor) -> torch.Tensor:
    """Each row of ``(N, C)`` to zero mean and unit (biased) variance over its ``C`` values."""
    return F.layer_norm(h, h.shape[-1:], eps=NORM_EPS)


def cam_reference(h: torch.Tensor, mods: torch.Tensor, layer: int) -> torch.Tensor:
    """:meth:`CoordinateModulation.modulate` in plain torch arithmetic (tests compare the two)."""
    mean = h.mean(-1, keepdim=True)
    var = ((h - mean) ** 2).mean(-1, keepdim=True)
    gamma, beta = mods[:, 2 * layer : 2 * layer + 1], mods[:, 2 * layer + 1 : 2 * layer + 2]
    return (h - mean) / torch.sqrt(var + NORM_EPS) * (1 + gamma) + beta


class CoordinateModulation(nn.Module):
    """Scale and shift for ``n_layers`` hidden layers from a grid over ``[0, 1]^3``.

    Args:
        n_layers: hidden layers to modulate (1 to 16).
        grid: ``"triplane"`` or ``"dense_grid"``.
        resolution: vertices per axis of the grid (2 to 1024).
        device: where the grid's table lives.

    ``forward(u)``: ``(N, 3)`` float32 positions in ``[0, 1]`` (clamped) -> ``(N, 2 * n_layers)``
    float32, ``[gamma_0, beta_0, gamma_1, beta_1, ...]``. ``modulate(h, mods, i)``: ``(N, C)``
    pre-activations of hidden layer ``i`` (C >= 2) -> ``(N, C)``, the normalised and modulated units.

    Example:
        >>> import torch
        >>> from fields3d.fields.modulation import CoordinateModulation
        >>> cam = CoordinateModulation(n_layers=2, grid="triplane", resolution=16)
        >>> mods = cam(torch.rand(5, 3))  # (N, 3) in [0, 1] -> (N, 2 * 2)
        >>> mods.shape, bool(mods.abs().max() < 1e-3)  # starts as the identity modulation
        (torch.Size([5, 4]), True)
        >>> h = cam.modulate(torch.randn(5, 8), mods, 1)  # layer 1's 8 units
        >>> h.shape, bool(h.mean(1).abs().max() < 1e-2)  # normalised per point
        (torch.Size([5, 8]), True)
    """

    def __init__(
        self,
        n_layers: int,
        grid: str = "triplane",
        resolution: int = 128,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        check_size("n_layers", n_layers, 1, MAX_MODULATED_LAYERS)
        check_size("resolution", resolution, 2, MAX_CAM_RESOLUTION)
        if grid not in GRIDS:
            raise InputError(f"the CAM grid must be 'triplane' or 'dense_grid', got {grid!r}")
        self.n_layers, self.kind, self.resolution = n_layers, grid, resolution
        n_features = 2 * n_layers
        if grid == "triplane":
            self.grid = TriPlane(resolution, n_features, "sum", device=device)
        else:
            self.grid = DenseGrid(3, resolution, n_features, device=device)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.grid(u.clamp(0.0, 1.0).to(self.grid.params.dtype).contiguous())

    @staticmethod
    def modulate(h: torch.Tensor, mods: torch.Tensor, layer: int) -> torch.Tensor:
        """``norm(h) * (1 + gamma_layer) + beta_layer`` for ``(N, C)`` ``h`` and ``forward``'s ``mods``."""
        gamma = mods[:, 2 * layer : 2 * layer + 1]
        beta = mods[:, 2 * layer + 1 : 2 * layer + 2]
        return cam_normalise(h) * (1 + gamma.to(h.dtype)) + beta.to(h.dtype)

    def extra_repr(self) -> str:
        return f"n_layers={self.n_layers}, grid={self.kind!r}, resolution={self.resolution}"
