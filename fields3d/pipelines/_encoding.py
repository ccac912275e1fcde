"""Encoding configs for pipelines of a given dimension: fill ``n_input_dims``, validate, explain mismatches.

A pipeline knows how many coordinates its positions have (``fit-image``: 2, ``fit-sdf``: 3), so an
encoding config may leave ``n_input_dims`` out: :func:`resolve` fills it in wherever the type takes
that setting (also in the encodings nested in a composite such as ``concat``) and checks the
result, so ``{"type": "dense_grid"}`` means a 2D dense grid in ``fit-image`` and a 3D one in
``fit-sdf``. Encodings are built on torch's ``meta`` device to read their settings and sizes: no
memory is allocated, whatever the resolution.
"""

from __future__ import annotations

from ..encodings import Encoding, available, create
from ..errors import InputError


def probe(config: dict) -> Encoding:
    """Build ``config`` without allocating its parameters (on torch's meta device), to read its
    ``config()``, ``n_input_dims``, ``n_output_dims`` and ``n_params``.

    Falls back to the CPU for an encoding whose constructor cannot run on the meta device.
    Raises the InputError of :func:`fields3d.encodings.create` for a bad config.
    """
    try:
        return create(config, device="meta")
    except (NotImplementedError, RuntimeError):
        return create(config, device="cpu")


def fill_input_dims(config, dims: int):
    """``config`` with ``n_input_dims = dims`` added where its type takes it and it is absent.

    Recurses into settings that are encoding configs or lists of them (a composite's parts).
    Anything that is not a dict with a string ``"type"`` comes back unchanged (``create`` reports it).
    """
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        return config
    out = {key: _fill_nested(value, dims) for key, value in config.items()}
    if "n_input_dims" not in out and _takes_input_dims(out["type"]):
        out["n_input_dims"] = dims
    return out


def _fill_nested(value, dims: int):
    if isinstance(value, dict):
        return fill_input_dims(value, dims)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [fill_input_dims(v, dims) for v in value]
    return value


def _takes_input_dims(name: str) -> bool:
    try:
        return "n_input_dims" in probe({"type": name}).config()
    except (
        InputError
    ):  # unknown, or needs settings (a composite): it takes no n_input_dims of its own
        return False


def types_for_dims(dims: int) -> tuple[str, ...]:
    """The registered types that, with their default settings, encode ``dims``-D positions (sorted).

    Types that cannot be built from ``{"type": name}`` alone (composites such as ``concat``) are left out.
    """
    out = []
    for name in available():
        try:
            if probe(fill_input_dims({"type": name}, dims)).n_input_dims == dims:
                out.append(name)
        except InputError:
            continue
    return tuple(out)


def resolve(config, dims: int, task: str) -> tuple[dict, Encoding]:
    """Fill in and check an encoding config for a ``dims``-D pipeline called ``task`` (e.g. ``"fit-image"``).

    Returns the complete config (``encoding.config()``: every setting, defaults included) and the
    probe encoding (meta device) it came from. Raises InputError for a config ``create`` rejects
    and for an encoding of other positions, e.g. ``the triplane encoding takes 3D positions;
    fit-image needs a 2D encoding such as dense_grid, hash_grid or simplex_grid``.
    """
    filled = fill_input_dims(config, dims)
    encoding = probe(filled)
    if encoding.n_input_dims != dims:
        name = filled["type"]
        if "n_input_dims" in filled and _takes_input_dims(name):
            raise InputError(
                f"the {name} encoding is set to n_input_dims={filled['n_input_dims']}; {task} needs "
                f"n_input_dims={dims} (leave it out to get {dims})"
            )
        part = _part_set_to_other_dims(filled, dims)
        if part is not None:
            where, part_name, value = part
            raise InputError(
                f"the {part_name} encoding in {name}'s {where} is set to n_input_dims={value}; {task} needs "
                f"n_input_dims={dims} (leave it out to get {dims})"
            )
        others = types_for_dims(dims)
        such_as = f"such as {_or_list(others)}" if others else "(no registered type takes them)"
        raise InputError(
            f"the {name} encoding takes {encoding.n_input_dims}D positions; {task} needs a {dims}D encoding {such_as}"
        )
    return encoding.config(), encoding


def _part_set_to_other_dims(config: dict, dims: int, where: str = ""):
    """``(where, type, n_input_dims)`` of the first nested part of ``config`` (e.g. ``"encodings[0]"``) whose
    ``n_input_dims`` is set to other than ``dims``, or None."""
    for key, part in _parts(config):
        place = f"{where}.{key}" if where else key
        if part.get("n_input_dims", dims) != dims:
            return place, part.get("type"), part["n_input_dims"]
        found = _part_set_to_other_dims(part, dims, place)
        if found is not None:
            return found
    return None


def _parts(config: dict):
    """``(key, part)`` for each setting of ``config`` that is a dict, and ``(key[i], part)`` for each dict in a list."""
    for key, value in config.items():
        if isinstance(value, dict):
            yield key, value
        elif isinstance(value, list):
            yield from ((f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, dict))


def _or_list(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
