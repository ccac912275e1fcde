"""Building encodings from plain dicts (job files): ``create(config)``.

``config`` is ``{"type": <name>, **settings}``; the settings are the registered class's
constructor arguments (all but ``device``), so ``{"type": "hash_grid", "n_levels": 8}`` is
``HashGrid(n_levels=8)``. Every encoding's ``config()`` returns such a dict, and
``create(enc.config())`` rebuilds it (freshly initialised; load its ``state_dict`` for the
parameters).

A new encoding registers itself with one line above its class::

    @register("dense_grid")
    class DenseGrid(Encoding):
        ...

Composite configs (``"concat"``) hold other configs; nesting is bounded: a config sits at most
:data:`MAX_CONFIG_DEPTH` (16) configs deep, the outermost counting as 1. Deeper nesting is a
generated-config slip (no model needs it), and would otherwise end in Python's RecursionError.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import InputError
from .base import Encoding


@dataclass(frozen=True)
class _Entry:
    cls: type[Encoding]
    keys: tuple[str, ...]  # the settings the constructor takes, in its order
    required: tuple[str, ...]  # those without a default


_REGISTRY: dict[str, _Entry] = {}

#: How many configs deep :func:`create` builds: a leaf config alone is 1 level, each composite
#: around it one more. Checked on the way down, before the next level recurses.
MAX_CONFIG_DEPTH = 16
_DEPTH = contextvars.ContextVar(
    "fields3d_encoding_config_depth", default=0
)  # create() calls on this stack


def _settings_of(cls: type[Encoding]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys, required = [], []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in ("self", "device") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        keys.append(p.name)
        if p.default is p.empty:
            required.append(p.name)
    return tuple(keys), tuple(required)


def register(name: str) -> Callable[[type[Encoding]], type[Encoding]]:
    """Class decorator: make ``create({"type": name, ...})`` build this :class:`Encoding`.

    The accepted settings are the constructor's arguments other than ``device``; it sets the
    class's ``type_name`` to ``name``. Registering another class under a taken name raises InputError.

    Args:
        name: the ``"type"`` of the class's configs, a Python identifier (``"hash_grid"``).

    Returns:
        The decorator; it returns the class unchanged but for ``type_name``.

    Raises:
        InputError: ``name`` is not an identifier, the decorated object is not an
            :class:`Encoding` subclass, or ``name`` is taken by another class.

    Example:
        >>> from fields3d.encodings import Concat, HashGrid, register
        >>> HashGrid.type_name  # set by the @register("hash_grid") line above its class
        'hash_grid'
        >>> register("hash_grid")(Concat)
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: encoding type 'hash_grid' is already registered to HashGrid
        >>> register("hash grid")
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: an encoding type name must be an identifier like 'hash_grid', got 'hash grid'
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(
            f"an encoding type name must be an identifier like 'hash_grid', got {name!r}"
        )

    def decorate(cls: type[Encoding]) -> type[Encoding]:
        if not (isinstance(cls, type) and issubclass(cls, Encoding)):
            raise InputError(f"register({name!r}) decorates Encoding subclasses, got {cls!r}")
        old = _REGISTRY.get(name)
        if old is not None and old.cls.__qualname__ != cls.__qualname__:
            raise InputError(
                f"encoding type {name!r} is already registered to {old.cls.__qualname__}"
            )
        cls.type_name = name
        _REGISTRY[name] = _Entry(cls, *_settings_of(cls))
        return cls

    return decorate


def available() -> tuple[str, ...]:
    """The registered encoding types, sorted (the ``"type"`` values :func:`create` accepts).

    Example:
        >>> from fields3d.encodings import available
        >>> types = available()  # a sorted tuple of str
        >>> builtin = {"concat", "dense_grid", "hash_grid", "rbf", "simplex_grid", "triplane"}
        >>> [t for t in types if t in builtin]
        ['concat', 'dense_grid', 'hash_grid', 'rbf', 'simplex_grid', 'triplane']
    """
    return tuple(sorted(_REGISTRY))


def create(config: dict, device: torch.device | str | None = None) -> Encoding:
    """Build an encoding from ``{"type": <name>, **settings}`` (see :func:`available`).

    Args:
        config: a dict such as ``{"type": "hash_grid", "n_levels": 8, "log2_hashmap_size": 16}``;
            omitted settings take the constructor's defaults. Not modified.
        device: where the parameters are allocated (default: torch's default device).

    Returns:
        A freshly initialised :class:`Encoding` whose ``config()`` holds these settings.

    Raises:
        InputError: ``config`` is not a dict, lacks ``"type"``, names an unknown type, has
            settings that type does not take or lacks ones it needs; or a value is invalid (the
            encoding's own message, e.g. ``n_levels must be an integer from 1 to 32, got 0``); or
            configs nest more than :data:`MAX_CONFIG_DEPTH` (16) levels deep.

    Example:
        >>> import torch
        >>> from fields3d.encodings import create
        >>> enc = create({"type": "hash_grid", "n_levels": 8, "log2_hashmap_size": 14})
        >>> type(enc).__name__, enc.n_output_dims  # 8 levels x 2 features (the default)
        ('HashGrid', 16)
        >>> enc.config()["base_resolution"]  # an omitted setting: the constructor's default
        16
        >>> copy = create(enc.config())  # round trip: the same settings, fresh parameters
        >>> _ = copy.load_state_dict(enc.state_dict())
        >>> x = torch.rand(4, 3)
        >>> torch.equal(copy(x), enc(x))
        True
        >>> create({"type": "hash_grid", "n_levels": 0})
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: n_levels must be an integer from 1 to 32, got 0
    """
    depth = _DEPTH.get() + 1
    if depth > MAX_CONFIG_DEPTH:
        raise InputError(
            f'encoding configs nest at most {MAX_CONFIG_DEPTH} levels deep (each "concat" adds one), got a deeper '
            'one; list the parts in one "concat" instead of nesting them'
        )
    token = _DEPTH.set(depth)
    try:
        return _build(config, device)
    finally:
        _DEPTH.reset(token)


def _build(config, device) -> Encoding:
    """:func:`create` one level down: check ``config``'s keys and build its type."""
    known = ", ".join(available())
    if not isinstance(config, dict):
        raise InputError(
            f'an encoding config must be a dict with a "type" key, got {type(config).__name__}'
        )
    if "type" not in config:
        raise InputError(
            f'an encoding config needs a "type" key (one of: {known}), got keys {list(config)}'
        )
    name = config["type"]
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise InputError(f"unknown encoding type {name!r}; known types: {known}")
    settings = {k: v for k, v in config.items() if k != "type"}
    unknown = [k for k in settings if k not in entry.keys]
    if unknown:
        raise InputError(
            f"encoding type {name!r} does not take {_listed(unknown)}; its settings are: {', '.join(entry.keys)}"
        )
    missing = [k for k in entry.required if k not in settings]
    if missing:
        raise InputError(f"encoding type {name!r} needs {_listed(missing)}")
    return entry.cls.from_config(settings, device=device)


def _listed(keys: list) -> str:
    return ", ".join(repr(k) for k in keys)
