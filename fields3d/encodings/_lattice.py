"""What the lattice encodings (hash grid, dense grid, tri-plane, simplex grid) share: the level
layout they hand the core, input checks, and the twice-differentiable core op.

"Lattice" means one thing in fields3d and its core (``cuda/encodings/lattice.h`` says the same):
the regular arrangement of vertices an encoding keeps a table row for and interpolates between,
cubic (hash grid, dense grid, each tri-plane plane) or simplicial (the simplex grid's skewed
lattice). A *lattice encoding* is an encoding built that way; this module, the core's
``LatticeLayout`` and its ``lattice_*`` functions serve all four. A plain grid of samples (an SDF
volume, marching cubes' input) is a grid, not a lattice.

Each config describes its table as :class:`LatticeLevel` rows (scale, resolution, rows, offset,
hashed, plane axes) and names its ``kind`` ("hash", "dense", "triplane" or "simplex");
:func:`lattice_encode` checks the inputs and runs the core's ``lattice_*`` kernels, which return
the level-major ``(N, n_levels * F)`` features.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import torch

from .. import _core_ops
from ._table_op import check_inputs, encode_table


@dataclass(frozen=True)
class LatticeLevel:
    scale: float
    resolution: int  # vertices per (skewed) axis
    size: int  # rows of the table the level holds
    offset: int  # its first row
    hashed: bool = False
    axes: tuple[int, int] = (0, 1)  # tri-plane: the input axes of the level's plane


class LatticeConfig(Protocol):
    kind: str  # "hash", "dense", "triplane" or "simplex"
    name: str  # for messages: "hash grid", "dense grid", ...
    interpolation: str

    @property
    def n_input_dims(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def levels(self) -> tuple[LatticeLevel, ...]: ...
    @property
    def n_entries(self) -> int: ...


def stack_levels(levels: list[tuple]) -> tuple[LatticeLevel, ...]:
    """Levels from ``(scale, resolution, size, hashed, axes)`` tuples, offsets stacked in order."""
    out, offset = [], 0
    for scale, resolution, size, hashed, axes in levels:
        out.append(LatticeLevel(scale, resolution, size, offset, hashed, axes))
        offset += size
    return tuple(out)


@functools.lru_cache(maxsize=64)
def layout(config: LatticeConfig):
    """The core's checked ``LatticeLayout`` for a (frozen, hashable) config."""
    lv = config.levels
    return _core_ops.LatticeLayout(
        kind=config.kind,
        n_dims=config.n_input_dims,
        n_features=config.n_features,
        interpolation=config.interpolation,
        scales=[v.scale for v in lv],
        resolutions=[v.resolution for v in lv],
        sizes=[v.size for v in lv],
        hashed=[v.hashed for v in lv],
        axes=[list(v.axes) for v in lv],
    )


def lattice_encode(x: torch.Tensor, params: torch.Tensor, config: LatticeConfig) -> torch.Tensor:
    """``(N, D)`` positions -> ``(N, n_levels * F)`` level-major features (checked inputs)."""
    check_inputs(
        x,
        params,
        n_dims=config.n_input_dims,
        n_entries=config.n_entries,
        n_features=config.n_features,
        name=config.name,
    )
    return encode_table(x, params, layout(config), _lut(config, x.device))


@functools.lru_cache(maxsize=64)
def _lut(config: LatticeConfig, device: torch.device) -> torch.Tensor | None:
    """The config's row lookup (simplex direct levels) on ``device``, made once per device."""
    lut = getattr(config, "lut", None)
    return None if lut is None else lut.to(device)
