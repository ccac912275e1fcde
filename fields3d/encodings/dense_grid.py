"""Dense grid encoding: a trilinear (bilinear in 2D) grid of feature vectors, with first and
second derivatives in the core. The voxel representation the editing pipeline builds on.

Layout (the specification the core and the pure-torch reference follow): ``resolution`` R
vertices per axis at ``x = i / (R - 1)``, so the grid's corners sit on the corners of
``[0, 1]^d``; vertex ``(i_0, .., i_{d-1})`` is row ``sum_k i_k R^k`` of the ``(R^d, F)`` table. A
point interpolates the ``2^d`` corners of its cell, linearly or with smoothstep weights.
Coordinates outside ``[0, 1]`` are clamped (zero gradient along a clamped axis); a point with a
NaN coordinate encodes to NaN and adds nothing to the table's gradient.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .._checks import check_choice, is_int
from ..errors import InputError
from ._lattice import LatticeLevel, lattice_encode, stack_levels
from .base import Encoding
from .factory import register

MAX_ROWS = 2**30


@dataclass(frozen=True)
class DenseGridConfig:
    """Settings of a dense grid; validated on construction (raises InputError).

    Attributes:
        n_input_dims: d, 2 or 3. resolution: R vertices per axis (>= 2, R^d at most 2^30).
        n_features: F per vertex, 1 to 32. interpolation: ``"linear"`` or ``"smoothstep"``.

    Derived sizes: ``n_entries`` (R^d table rows), ``n_params`` (R^d F) and ``n_output_dims``
    (F).

    Example:
        >>> from fields3d.encodings import DenseGridConfig
        >>> cfg = DenseGridConfig(n_input_dims=2, resolution=64, n_features=8)
        >>> cfg.n_entries, cfg.n_params, cfg.n_output_dims
        (4096, 32768, 8)
        >>> DenseGridConfig(resolution=1)
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: resolution must be an integer >= 2, got 1
    """

    n_input_dims: int = 3
    resolution: int = 128
    n_features: int = 4
    interpolation: str = "linear"

    kind = "dense"
    name = "dense grid"

    def __post_init__(self) -> None:
        check_choice("n_input_dims", self.n_input_dims, (2, 3))
        check_choice("interpolation", self.interpolation, ("linear", "smoothstep"))
        if not is_int(self.n_features) or not 1 <= self.n_features <= 32:
            raise InputError(f"n_features must be an integer from 1 to 32, got {self.n_features!r}")
        if not is_int(self.resolution) or self.resolution < 2:
            raise InputError(f"resolution must be an integer >= 2, got {self.resolution!r}")
        if self.resolution**self.n_input_dims > MAX_ROWS:
            raise InputError(
                f"resolution {self.resolution} in {self.n_input_dims}D needs {self.resolution**self.n_input_dims} "
                f"rows, more than 2^30; use a hash grid or tri-plane for finer grids"
            )

    @functools.cached_property
    def levels(self) -> tuple[LatticeLevel, ...]:
        r = self.resolution
        return stack_levels([(float(r - 1), r, r**self.n_input_dims, False, (0, 1))])

    @property
    def n_entries(self) -> int:
        return self.resolution**self.n_input_dims

    @property
    def n_params(self) -> int:
        return self.n_entries * self.n_features

    @property
    def n_output_dims(self) -> int:
        return self.n_features

    def to_dict(self) -> dict:
        return asdict(self)


def dense_grid_encode(
    x: torch.Tensor, params: torch.Tensor, config: DenseGridConfig
) -> torch.Tensor:
    """Interpolate a dense grid at positions.

    Args:
        x: ``(N, config.n_input_dims)`` positions in ``[0, 1]``, float32 (float64 on the CPU).
        params: ``(resolution**n_input_dims, n_features)`` vertex features, same dtype and device.
        config: the grid's :class:`DenseGridConfig`.

    Returns:
        ``(N, n_features)`` in ``x``'s dtype; differentiable twice w.r.t. ``x`` and ``params``.

    Example:
        >>> import torch
        >>> from fields3d.encodings import DenseGridConfig, dense_grid_encode
        >>> cfg = DenseGridConfig(n_input_dims=2, resolution=3, n_features=1)
        >>> params = torch.arange(9.0)[:, None]  # (R^2, F): vertex (i, j) holds i + 3 j
        >>> x = torch.tensor([[0.5, 0.5], [0.25, 0.0], [1.0, 1.0]])  # (N, 2) in [0, 1]^2
        >>> dense_grid_encode(x, params, cfg)  # the centre vertex, half-way from 0 to 1, the corner
        tensor([[4.0000],
                [0.5000],
                [8.0000]])
        >>> _ = x.requires_grad_()
        >>> (dx,) = torch.autograd.grad(dense_grid_encode(x, params, cfg).sum(), x)
        >>> dx[1]  # slopes: 1 along x and 3 along y per cell of width 1/2
        tensor([2., 6.])
    """
    return lattice_encode(x, params, config)


@register("dense_grid")
class DenseGrid(Encoding):
    """Dense grid encoding as an ``nn.Module``: ``(N, d)`` in ``[0, 1]`` -> ``(N, n_features)``.

    Parameters: a float32 table ``(resolution**d, n_features)``, initialised uniformly in +-1e-4
    (``grid.params.view(R, .., R, F)`` with the first axis last: ``[z, y, x]`` in 3D).

    Args:
        n_input_dims, resolution, n_features, interpolation: the :class:`DenseGridConfig`
            settings.
        device: where the table is allocated (default: torch's default device).

    Example:
        >>> import torch
        >>> from fields3d.encodings import DenseGrid
        >>> grid = DenseGrid(n_input_dims=3, resolution=16, n_features=4)
        >>> grid.params.shape, grid.n_output_dims  # (16^3, 4)
        (torch.Size([4096, 4]), 4)
        >>> with torch.no_grad():  # a field that is x at every vertex, in feature 0
        ...     grid.params.view(16, 16, 16, 4)[..., 0] = torch.linspace(0, 1, 16)  # [z, y, x]
        >>> y = grid(torch.tensor([[0.3, 0.9, 0.1]])).detach()  # (N, 3) -> (N, 4)
        >>> y.shape, round(y[0, 0].item(), 4)  # feature 0 reads x
        (torch.Size([1, 4]), 0.3)
        >>> config = grid.config()  # what fields3d.encodings.create rebuilds it from
        >>> config["type"], config["resolution"], config["n_features"]
        ('dense_grid', 16, 4)
    """

    def __init__(
        self,
        n_input_dims: int = 3,
        resolution: int = 128,
        n_features: int = 4,
        interpolation: str = "linear",
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.spec = DenseGridConfig(n_input_dims, resolution, n_features, interpolation)
        self.n_input_dims = n_input_dims
        self.n_output_dims = self.spec.n_output_dims
        table = torch.empty(self.spec.n_entries, n_features, device=device, dtype=torch.float32)
        self.params = nn.Parameter(table.uniform_(-1e-4, 1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dense_grid_encode(x, self.params, self.spec)

    def config(self) -> dict:
        return {"type": self.type_name, **self.spec.to_dict()}

    def extra_repr(self) -> str:
        c = self.spec
        return f"{c.n_input_dims}D, resolution={c.resolution}, F={c.n_features}, interpolation={c.interpolation!r}"
