"""Argument checks shared by configs and modules; each raises InputError with the exact message."""

from __future__ import annotations

from .errors import InputError


def is_int(v) -> bool:
    """True for ints but not bools."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    """True for ints and floats but not bools."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_int(name: str, value, minimum: int) -> None:
    """Raise ``InputError("<name> must be an integer >= <minimum>, got <value!r>")`` unless it is one."""
    if not is_int(value) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
