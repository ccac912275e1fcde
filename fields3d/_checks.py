"""Argument checks shared by configs and modules; each raises InputError with the exact message."""

from __future__ import annotations

from .errors import InputError


def is_int(v) -> bool:
    """True for ints but not bools."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    """True for ints and floats but not bools."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: The most points a call samples or a step batches: sizes past these are typing slips, and would
#: otherwise fail deep in an allocator (2.4 GB of float64 points; 2^24 rows of activations a step).
MAX_POINTS = 10**8
MAX_BATCH = 2**24
#: Marching-cubes grid points per axis: 2048^3 float32 values are 34 GB already.
MAX_GRID = 2048

#: The largest seed every generator we seed accepts (torch's take at most 2^64 - 1, as signed 64-bit).
MAX_SEED = 2**63 - 1


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> None:
    """Raise ``InputError("<name> must be an integer >= <minimum>, got <value!r>")`` unless it is one;
    with ``maximum``, the message reads "from <minimum> to <maximum>"."""
    if maximum is None:
        if not is_int(value) or value < minimum:
            raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    elif not is_int(value) or not minimum <= value <= maximum:
        raise InputError(f"{name} must be an integer from {minimum} to {maximum}, got {value!r}")


def check_size(name: str, value, minimum: int, maximum: int) -> None:
    """:func:`check_int` with a maximum, keeping the ``>= minimum`` message for non-integers and
    values below ``minimum`` (as before the maximum was added); ``from minimum to maximum`` past it."""
    check_int(name, value, minimum)
    check_int(name, value, minimum, maximum)


def check_seed(value, name: str = "seed") -> None:
    """A random seed: an integer from 0 to :data:`MAX_SEED`."""
    check_int(name, value, 0, MAX_SEED)
