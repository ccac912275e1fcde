"""Tri-plane encoding (EG3D, K-Planes): three axis-aligned feature planes, optionally at several
resolutions, sampled bilinearly by a fused core kernel with double backward — unlike torch's
``grid_sample``, so eikonal losses on tri-plane SDFs need no finite differences.

Layout (the specification the core and the pure-torch reference follow): for each resolution
R in ``resolution`` (an int or a list, K-Planes style) there are three planes, over the input
axes (x, y), (x, z) and (y, z), each an ``(R^2, F)`` block of the table with vertices at
``u = i / (R - 1)`` (corners aligned, as the dense grid) and row ``i_u + R * i_v``. Blocks are
stacked resolution by resolution, planes in that order. Each plane gives F features; the three
planes of a resolution are aggregated by ``sum``, ``product`` (K-Planes) or ``concat``, and the
resolutions are concatenated: the output has ``len(resolution) * F`` features (``3 *`` that for
concat). Clamping and NaN rows behave as in the dense grid.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_choice, is_int
from ..errors import InputError
from ._lattice import LatticeLevel, lattice_encode, stack_levels
from .base import Encoding
from .factory import register

PLANES = ((0, 1), (0, 2), (1, 2))
MAX_RESOLUTIONS = 8
MAX_RESOLUTION = 2**14


def _as_resolutions(resolution) -> tuple[int, ...]:
    values = (resolution,) if is_int(resolution) else resolution
    ok = isinstance(values, (tuple, list)) and 1 <= len(values) <= MAX_RESOLUTIONS
    if not ok or not all(is_int(r) and 2 <= r <= MAX_RESOLUTION for r in values):
        raise InputError(
            f"resolution must be an integer from 2 to {MAX_RESOLUTION} or a list of 1 to {MAX_RESOLUTIONS} "
            f"such integers, got {resolution!r}"
        )
    return tuple(values)


@dataclass(frozen=True)
class TriPlaneConfig:
    """Settings of a tri-plane; validated on construction (raises InputError).

    Attributes:
        resolution: R, vertices per side of each plane: an integer from 2 to 16384 or a list of
            1 to 8 of them (K-Planes' multiscale planes; stored as a tuple).
        n_features: F per plane vertex, 1 to 32.
        aggregate: how a resolution's three planes combine: ``"sum"``, ``"product"`` or
            ``"concat"``.
        interpolation: ``"linear"`` or ``"smoothstep"``.

    Derived sizes: ``n_entries`` (``sum_R 3 R^2`` table rows), ``n_params`` (times F) and
    ``n_output_dims`` (``len(resolution) * F``, three times that for concat).

    Example:
        >>> from fields3d.encodings import TriPlaneConfig
        >>> cfg = TriPlaneConfig(resolution=[8, 16], n_features=4, aggregate="concat")
        >>> cfg.n_output_dims, cfg.n_entries  # 2 * 3 * 4; 3 * (64 + 256)
        (24, 960)
        >>> TriPlaneConfig(resolution=64, aggregate="sum").n_output_dims  # F: the planes add up
        16
        >>> TriPlaneConfig(aggregate="mean")
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: aggregate must be 'sum', 'product' or 'concat', got 'mean'
    """

    resolution: tuple[int, ...] = (128,)
    n_features: int = 16
    aggregate: str = "sum"
    interpolation: str = "linear"

    kind = "triplane"
    name = "tri-plane"
    n_input_dims = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolution", _as_resolutions(self.resolution))
        check_choice("aggregate", self.aggregate, ("sum", "product", "concat"))
        check_choice("interpolation", self.interpolation, ("linear", "smoothstep"))
        if not is_int(self.n_features) or not 1 <= self.n_features <= 32:
            raise InputError(f"n_features must be an integer from 1 to 32, got {self.n_features!r}")

    @functools.cached_property
    def levels(self) -> tuple[LatticeLevel, ...]:
        return stack_levels(
            [(float(r - 1), r, r * r, False, axes) for r in self.resolution for axes in PLANES]
        )

    @property
    def n_entries(self) -> int:
        return sum(3 * r * r for r in self.resolution)

    @property
    def n_params(self) -> int:
        return self.n_entries * self.n_features

    @property
    def n_output_dims(self) -> int:
        per_plane = len(self.resolution) * self.n_features
        return 3 * per_plane if self.aggregate == "concat" else per_plane

    def to_dict(self) -> dict:
        return {
            "resolution": list(self.resolution),
            "n_features": self.n_features,
            "aggregate": self.aggregate,
            "interpolation": self.interpolation,
        }


def aggregate_planes(planes: torch.Tensor, config: TriPlaneConfig) -> torch.Tensor:
    """``(N, n_resolutions * 3 * F)`` per-plane features -> the encoding (see the module doc)."""
    if config.aggregate == "concat":
        return planes
    n, f = planes.shape[0], config.n_features
    grouped = planes.view(n, len(config.resolution), 3, f)
    out = grouped.sum(dim=2) if config.aggregate == "sum" else grouped.prod(dim=2)
    return out.reshape(n, len(config.resolution) * f)


def triplane_encode(x: torch.Tensor, params: torch.Tensor, config: TriPlaneConfig) -> torch.Tensor:
    """Encode 3D positions with a tri-plane.

    Args:
        x: ``(N, 3)`` positions in ``[0, 1]``, float32 (float64 on the CPU).
        params: ``(config.n_entries, config.n_features)`` plane features, same dtype and device.
        config: the :class:`TriPlaneConfig`.

    Returns:
        ``(N, config.n_output_dims)`` in ``x``'s dtype; differentiable twice w.r.t. ``x`` and
        ``params``.

    Example:
        >>> import torch
        >>> from fields3d.encodings import TriPlaneConfig, triplane_encode
        >>> from fields3d.encodings.reference import triplane_reference
        >>> cfg = TriPlaneConfig(resolution=[8, 16], n_features=4, aggregate="product")
        >>> gen = torch.Generator().manual_seed(0)
        >>> params = torch.rand(cfg.n_entries, 4, generator=gen).requires_grad_()  # (960, 4)
        >>> x = torch.rand(50, 3, generator=gen, requires_grad=True)  # (N, 3) in [0, 1]^3
        >>> y = triplane_encode(x, params, cfg)
        >>> y.shape  # (N, len(resolution) * F)
        torch.Size([50, 8])
        >>> torch.allclose(y, triplane_reference(x, params, cfg), atol=1e-6)
        True
        >>> (dx,) = torch.autograd.grad(y.sum(), x, create_graph=True)  # double backward
        >>> (dp,) = torch.autograd.grad(dx.square().sum(), params)  # an eikonal-like loss
        >>> dx.shape, dp.shape
        (torch.Size([50, 3]), torch.Size([960, 4]))
    """
    return aggregate_planes(lattice_encode(x, params, config), config)


@register("triplane")
class TriPlane(Encoding):
    """Tri-plane encoding as an ``nn.Module``: ``(N, 3)`` in ``[0, 1]`` -> ``(N, n_output_dims)``.

    Parameters: a float32 table ``(sum_R 3 R^2, n_features)``. Initialised uniformly in +-1e-4
    for sum and concat, and in [0.1, 0.5] for product (K-Planes: a product of near-zero planes
    would have vanishing gradients).

    Args:
        resolution, n_features, aggregate, interpolation: the :class:`TriPlaneConfig` settings.
        device: where the table is allocated (default: torch's default device).

    Example:
        >>> import torch
        >>> from fields3d.encodings import TriPlane
        >>> planes = TriPlane(resolution=[32, 64], n_features=8, aggregate="product")
        >>> planes.params.shape  # 3 * (32^2 + 64^2) rows of F
        torch.Size([15360, 8])
        >>> planes(torch.rand(10, 3)).shape  # (N, 3) -> (N, 2 * 8)
        torch.Size([10, 16])
        >>> planes.config()["resolution"]  # a list in the dict form
        [32, 64]
    """

    def __init__(
        self,
        resolution: int | list[int] = 128,
        n_features: int = 16,
        aggregate: str = "sum",
        interpolation: str = "linear",
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.spec = TriPlaneConfig(resolution, n_features, aggregate, interpolation)
        self.n_input_dims = 3
        self.n_output_dims = self.spec.n_output_dims
        table = torch.empty(self.spec.n_entries, n_features, device=device, dtype=torch.float32)
        low, high = (0.1, 0.5) if aggregate == "product" else (-1e-4, 1e-4)
        self.params = nn.Parameter(table.uniform_(low, high))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return triplane_encode(x, self.params, self.spec)

    def config(self) -> dict:
        return {"type": self.type_name, **self.spec.to_dict()}

    def extra_repr(self) -> str:
        c = self.spec
        return f"resolution={list(c.resolution)}, F={c.n_features}, aggregate={c.aggregate!r}, params={c.n_params}"
