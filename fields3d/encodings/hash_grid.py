"""Multiresolution hash-grid encoding (instant-NGP), with first and second derivatives in the core.

Layout (the specification the core and the pure-torch reference both follow): level ``l`` has
scale ``s_l = base_resolution * per_level_scale**l - 1`` and resolution ``ceil(s_l) + 1``. A level
whose ``resolution**d`` vertices fit in ``2**log2_hashmap_size`` rows is indexed directly
(``sum_i p_i * resolution**i``) and holds ``resolution**d`` rows rounded up to a multiple of 8;
finer levels hash ``XOR_i p_i * prime_i`` (the primes ``PRIMES`` of :mod:`._levels`, in uint32
arithmetic) into ``2**log2_hashmap_size`` rows. The table is ``(n_entries, F)``, levels
stacked in order. Features come out level-major: ``y[:, l * F + f]``.

Coordinates: inputs are expected in ``[0, 1]^d``; outside it they are clamped to the boundary, so
the encoding is constant along the outward direction and its gradient along a clamped axis is 0.
A point with any NaN coordinate encodes to NaN in every feature, its position gradient is 0 and
it adds nothing to the table's gradient (one bad point cannot poison the parameters).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_choice as _check_choice
from ._lattice import LatticeLevel, lattice_encode, stack_levels
from ._levels import LevelTable, check_level_settings, level_rows, level_scale
from .base import Encoding
from .factory import register


@dataclass(frozen=True)
class HashGridConfig(LevelTable):
    """Hyper-parameters of a hash grid; validated on construction (raises InputError).

    Attributes:
        n_input_dims: d, 1 to 4. n_levels: L, 1 to 32. n_features_per_level: F, 1, 2, 4 or 8.
        log2_hashmap_size: T = 2^log2_hashmap_size rows per level at most, 4 to 30.
        base_resolution: the coarsest level's resolution (>= 2). per_level_scale: 1 to 16.
        interpolation: ``"linear"`` or ``"smoothstep"``.

    Derived sizes: ``n_output_dims`` (L * F), ``n_entries`` (the table's rows, all levels),
    ``n_params`` (``n_entries * F``) and ``levels`` (each level's ``scale``, ``resolution``,
    ``offset`` and ``size`` rows in the table, and whether it is ``hashed``; the module doc).

    Example:
        >>> from fields3d.encodings import HashGridConfig
        >>> cfg = HashGridConfig(
        ...     n_levels=4, log2_hashmap_size=12, base_resolution=4, per_level_scale=2.0
        ... )
        >>> cfg.n_output_dims, cfg.n_entries  # 64 + 512 + 4096 direct rows, then 2^12 hashed
        (8, 8768)
        >>> [(level.resolution, level.hashed) for level in cfg.levels]
        [(4, False), (8, False), (16, False), (32, True)]
        >>> HashGridConfig(n_features_per_level=3)
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: n_features_per_level must be 1, 2, 4 or 8, got 3
    """

    n_input_dims: int = 3
    n_levels: int = 16
    n_features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    per_level_scale: float = 1.5
    interpolation: str = "linear"

    kind = "hash"  # the lattice encoding's kind, for the core's LatticeLayout
    name = "hash grid"

    def __post_init__(self) -> None:
        _check_choice("n_input_dims", self.n_input_dims, (1, 2, 3, 4))
        _check_choice("n_features_per_level", self.n_features_per_level, (1, 2, 4, 8))
        _check_choice("interpolation", self.interpolation, ("linear", "smoothstep"))
        check_level_settings(self, 30)

    @functools.cached_property
    def levels(self) -> tuple[LatticeLevel, ...]:
        rows, out = 2**self.log2_hashmap_size, []
        for level in range(self.n_levels):
            scale = level_scale(self, level)
            resolution = math.ceil(scale) + 1
            dense = resolution**self.n_input_dims
            out.append((scale, resolution, level_rows(dense, rows), dense > rows, (0, 1)))
        return stack_levels(out)


def hash_grid_encode(x: torch.Tensor, params: torch.Tensor, config: HashGridConfig) -> torch.Tensor:
    """Encode positions with a hash grid.

    Args:
        x: ``(N, config.n_input_dims)`` positions in ``[0, 1]``, float32 (float64 on the CPU, for
            gradcheck), any strides. Outside ``[0, 1]`` coordinates are clamped; NaN rows give NaN.
        params: ``(config.n_entries, config.n_features_per_level)`` table, same dtype and device.
        config: the grid's :class:`HashGridConfig`.

    Returns:
        ``(N, config.n_output_dims)`` features, level-major. Differentiable twice w.r.t. ``x`` and
        ``params`` (e.g. an eikonal loss on ``d encoding / d x`` trains ``params``).

    Example:
        >>> import torch
        >>> from fields3d.encodings import HashGridConfig, hash_grid_encode
        >>> from fields3d.encodings.reference import hash_grid_reference
        >>> cfg = HashGridConfig(
        ...     n_levels=4, log2_hashmap_size=12, base_resolution=4, per_level_scale=2.0
        ... )
        >>> gen = torch.Generator().manual_seed(0)
        >>> params = torch.randn(cfg.n_entries, 2, generator=gen)  # (n_entries, F) = (8768, 2)
        >>> x = torch.rand(100, 3, generator=gen, requires_grad=True)  # (N, 3) in [0, 1]^3
        >>> y = hash_grid_encode(x, params, cfg)
        >>> y.shape, y.dtype  # (N, L * F)
        (torch.Size([100, 8]), torch.float32)
        >>> ref = hash_grid_reference(x, params, cfg)  # the same layout in plain torch
        >>> torch.allclose(y, ref, atol=1e-5)
        True
        >>> (dx,) = torch.autograd.grad(y.sum(), x, create_graph=True)  # differentiable again
        >>> (dx_ref,) = torch.autograd.grad(ref.sum(), x)
        >>> dx.shape, dx.requires_grad, torch.allclose(dx, dx_ref, atol=1e-3)
        (torch.Size([100, 3]), True, True)
        >>> far, edge = torch.full((1, 3), 2.0), torch.ones(1, 3)
        >>> torch.equal(hash_grid_encode(far, params, cfg), hash_grid_encode(edge, params, cfg))
        True
    """
    return lattice_encode(x, params, config)


@register("hash_grid")
class HashGrid(Encoding):
    """Multiresolution hash-grid encoding as an ``nn.Module``.

    ``forward(x)`` maps ``(N, n_input_dims)`` float32 positions in ``[0, 1]`` to
    ``(N, n_levels * n_features_per_level)`` features; see :func:`hash_grid_encode`. Parameters
    are a float32 table ``(n_entries, n_features_per_level)`` initialised uniformly in +-1e-4.

    ``grid.spec`` is the :class:`HashGridConfig` (sizes, layout); ``grid.config()`` the dict form
    ``{"type": "hash_grid", ...}`` that :func:`fields3d.encodings.create` rebuilds it from.

    Args:
        n_input_dims, n_levels, n_features_per_level, log2_hashmap_size, base_resolution,
            per_level_scale, interpolation: the :class:`HashGridConfig` settings.
        device: where the table is allocated (default: torch's default device).

    Example:
        >>> import torch
        >>> from fields3d.encodings import HashGrid
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> grid = HashGrid(
        ...     n_levels=4, log2_hashmap_size=12, base_resolution=4, per_level_scale=2.0
        ... )
        >>> grid.params.shape, grid.params.dtype, grid.n_output_dims
        (torch.Size([8768, 2]), torch.float32, 8)
        >>> head = torch.nn.Linear(grid.n_output_dims, 1)
        >>> x = torch.rand(64, 3, requires_grad=True)  # (N, 3) float32 in [0, 1]^3
        >>> sdf = head(grid(x))  # (N, 1)
        >>> (g,) = torch.autograd.grad(sdf.sum(), x, create_graph=True)  # (N, 3)
        >>> ((g.norm(dim=-1) - 1) ** 2).mean().backward()  # an eikonal loss
        >>> grid.params.grad.shape, bool(grid.params.grad.abs().sum() > 0)  # it reaches the table
        (torch.Size([8768, 2]), True)
    """

    def __init__(
        self,
        n_input_dims: int = 3,
        n_levels: int = 16,
        n_features_per_level: int = 2,
        log2_hashmap_size: int = 19,
        base_resolution: int = 16,
        per_level_scale: float = 1.5,
        interpolation: str = "linear",
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.spec = HashGridConfig(
            n_input_dims,
            n_levels,
            n_features_per_level,
            log2_hashmap_size,
            base_resolution,
            per_level_scale,
            interpolation,
        )
        self.n_input_dims = n_input_dims
        self.n_output_dims = self.spec.n_output_dims
        table = torch.empty(
            self.spec.n_entries, n_features_per_level, device=device, dtype=torch.float32
        )
        self.params = nn.Parameter(table.uniform_(-1e-4, 1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return hash_grid_encode(x, self.params, self.spec)

    def config(self) -> dict:
        """``{"type": "hash_grid", ...}``: the settings :func:`fields3d.encodings.create` takes."""
        return {"type": self.type_name, **self.spec.to_dict()}

    def extra_repr(self) -> str:
        c = self.spec
        return (
            f"n_input_dims={c.n_input_dims}, n_levels={c.n_levels}, F={c.n_features_per_level}, "
            f"T=2^{c.log2_hashmap_size}, base={c.base_resolution}, scale={c.per_level_scale}, "
            f"interpolation={c.interpolation!r}, params={c.n_params}"
        )
