"""The multiresolution level layout the hash grid and the simplex grid share: their settings'
checks, each level's scale, its rows in the table, the table's sizes, and the hash's primes.

A config with ``n_levels``, ``log2_hashmap_size``, ``base_resolution`` and ``per_level_scale``
has levels ``l = 0 .. n_levels - 1`` of scale ``base_resolution * per_level_scale**l - 1`` on the
cubic lattice (the simplex grid rescales it for its own lattice). A level whose vertices fit in
``2**log2_hashmap_size`` rows is indexed directly, else it is hashed into that many rows with
``XOR_i v_i * PRIMES[i]`` (uint32 arithmetic).
"""

from __future__ import annotations

import math
from dataclasses import asdict

from .._checks import check_int, is_int
from ..errors import InputError

#: The instant-NGP hash's primes, one per input axis: the one copy in Python. The core's kernels
#: hold the same (``fields3d._core.HASH_PRIMES``; tests/encodings/test_hash_grid.py compares them).
PRIMES = (1, 2654435761, 805459861, 3674653429)
MAX_LEVELS = 32
LOG2_TABLE_RANGE = (4, 30)


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
    def n_features(self) -> int:
        """Features per level (the name the lattice encodings share)."""
        return self.n_features_per_level

    @property
    def n_params(self) -> int:
        return self.n_entries * self.n_features_per_level

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level

    def to_dict(self) -> dict:
        return asdict(self)
