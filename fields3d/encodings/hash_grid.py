"""Multiresolution hash-grid encoding (instant-NGP), with first and second derivatives in the core.

Layout (the specification the core and the pure-torch reference both follow): level ``l`` has
scale ``s_l = base_resolution * per_level_scale**l - 1`` and resolution ``ceil(s_l) + 1``. A level
whose ``resolution**d`` vertices fit in ``2**log2_hashmap_size`` rows is indexed directly
(``sum_i p_i * resolution**i``) and holds ``resolution**d`` rows rounded up to a multiple of 8;
finer levels hash ``XOR_i p_i * prime_i`` (primes 1, 2654435761, 805459861, 3674653429, in
uint32 arithmetic) into ``2**log2_hashmap_size`` rows. The table is ``(n_entries, F)``, levels
stacked in order. Features come out level-major: ``y[:, l * F + f]``.

Coordinates: inputs are expected in ``[0, 1]^d``; outside it they are clamped to the boundary, so
the encoding is constant along the outward direction and its gradient along a clamped axis is 0.
A point with any NaN coordinate encodes to NaN in every feature, its position gradient is 0 and
it adds nothing to the table's gradient (one bad point cannot poison the parameters).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .. import _native
from .._checks import check_choice as _check_choice
from .._checks import check_int, is_int
from ..errors import InputError
from ._table_op import check_inputs as _check_inputs
from ._table_op import encode_table
from .base import Encoding
from .factory import register

PRIMES = (1, 2654435761, 805459861, 3674653429)
MAX_LEVELS = 32
LOG2_TABLE_RANGE = (4, 30)


@dataclass(frozen=True)
class Level:
    scale: float
    resolution: int
    size: int
    offset: int
    hashed: bool


def check_level_settings(config, max_log2_finest: int) -> None:
    """Raise InputError unless ``config``'s n_levels, log2_hashmap_size, base_resolution and
    per_level_scale are valid multiresolution settings (shared by the hash and simplex grids)."""
    if not is_int(config.n_levels) or not 1 <= config.n_levels <= MAX_LEVELS:
        raise InputError(
            f"n_levels must be an integer from 1 to {MAX_LEVELS}, got {config.n_levels!r}"
        )
    lo, hi = LOG2_TABLE_RANGE
    if not is_int(config.log2_hashmap_size) or not lo <= config.log2_hashmap_size <= hi:
        raise InputError(
            f"log2_hashmap_size must be an integer from {lo} to {hi} "
            f"(2^{lo} to 2^{hi} rows per level), got {config.log2_hashmap_size!r}"
        )
    check_int("base_resolution", config.base_resolution, 2)
    if not (
        isinstance(config.per_level_scale, (int, float)) and 1.0 <= config.per_level_scale <= 16.0
    ):
        raise InputError(
            f"per_level_scale must be a number from 1 to 16, got {config.per_level_scale!r}"
        )
    finest = config.base_resolution * float(config.per_level_scale) ** (config.n_levels - 1)
    if finest > 2.0**max_log2_finest:
        raise InputError(
            f"the finest level's resolution ({finest:.3g}) exceeds 2^{max_log2_finest}; "
            "use fewer levels or a smaller per_level_scale"
        )


def level_scale(config, level: int) -> float:
    """``base_resolution * per_level_scale**level - 1``: level ``level``'s scale on the cubic lattice."""
    return 2.0 ** (level * math.log2(config.per_level_scale)) * config.base_resolution - 1.0


def level_rows(dense: int, rows: int) -> int:
    """Rows of a level with ``dense`` vertices in a ``rows``-row table: every vertex (rounded up to
    a multiple of 8) when they fit, else ``rows`` (the level is hashed)."""
    return min(-(-dense // 8) * 8, rows)


class LevelTable:
    """The sizes of a multiresolution table config: ``levels`` (each with ``offset`` and ``size``
    rows), ``n_levels`` and ``n_features_per_level`` (shared by the hash and simplex grids)."""

    @property
    def n_entries(self) -> int:
        """Rows of the parameter table (all levels)."""
        last = self.levels[-1]
        return last.offset + last.size

    @property
    def n_params(self) -> int:
        return self.n_entries * self.n_features_per_level

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HashGridConfig(LevelTable):
    """Hyper-parameters of a hash grid; validated on construction (raises InputError)."""

    n_input_dims: int = 3
    n_levels: int = 16
    n_features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    per_level_scale: float = 1.5
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        _check_choice("n_input_dims", self.n_input_dims, (1, 2, 3, 4))
        _check_choice("n_features_per_level", self.n_features_per_level, (1, 2, 4, 8))
        _check_choice("interpolation", self.interpolation, ("linear", "smoothstep"))
        check_level_settings(self, 30)

    @functools.cached_property
    def levels(self) -> tuple[Level, ...]:
        rows, out, offset = 2**self.log2_hashmap_size, [], 0
        for level in range(self.n_levels):
            scale = level_scale(self, level)
            resolution = math.ceil(scale) + 1
            dense = resolution**self.n_input_dims
            size = level_rows(dense, rows)
            out.append(Level(scale, resolution, size, offset, hashed=dense > rows))
            offset += size
        return tuple(out)


@functools.lru_cache(maxsize=64)
def _layout(config: HashGridConfig):
    lv = config.levels
    return _native.core().HashGridLayout(
        n_dims=config.n_input_dims,
        n_features=config.n_features_per_level,
        interpolation=config.interpolation,
        scales=[v.scale for v in lv],
        resolutions=[v.resolution for v in lv],
        sizes=[v.size for v in lv],
        hashed=[v.hashed for v in lv],
    )


def check_inputs(x, params, config: HashGridConfig) -> None:
    """Raise InputError unless x and params suit ``config`` and each other."""
    _check_inputs(
        x,
        params,
        n_dims=config.n_input_dims,
        n_entries=config.n_entries,
        n_features=config.n_features_per_level,
        name="hash grid",
    )


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
    """
    check_inputs(x, params, config)
    return encode_table(x, params, _layout(config), "hash_grid")


@register("hash_grid")
class HashGrid(Encoding):
    """Multiresolution hash-grid encoding as an ``nn.Module``.

    ``forward(x)`` maps ``(N, n_input_dims)`` float32 positions in ``[0, 1]`` to
    ``(N, n_levels * n_features_per_level)`` features; see :func:`hash_grid_encode`. Parameters
    are a float32 table ``(n_entries, n_features_per_level)`` initialised uniformly in +-1e-4.

    ``grid.spec`` is the :class:`HashGridConfig` (sizes, layout); ``grid.config()`` the dict form
    ``{"type": "hash_grid", ...}`` that :func:`fields3d.encodings.create` rebuilds it from.
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
