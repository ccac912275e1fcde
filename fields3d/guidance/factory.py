"""Building priors from a spec string (command lines, job files): ``create(spec, **settings)``.

A spec is a registered name, optionally followed by ``:`` and an argument that fills the prior's
:attr:`~fields3d.guidance.Guidance.spec_argument`::

    create("stable_diffusion", prompt="a ceramic mug")                  # model from FIELDS3D_SD_MODEL
    create("stable_diffusion:/models/sd21", prompt="a ceramic mug")     # model=/models/sd21
    create("target:assets/meshes/spot.obj")                            # path=assets/meshes/spot.obj

The settings are the registered class's constructor arguments. A new prior registers itself with
one line above its class, as encodings do (:mod:`fields3d.encodings.factory`)::

    @register("stable_diffusion")
    class StableDiffusionGuidance(Guidance):
        ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError
from .base import Guidance


@dataclass(frozen=True)
class _Entry:
    cls: type[Guidance]
    keys: tuple[str, ...]  # the settings the constructor takes, in its order
    required: tuple[str, ...]  # those without a default


_REGISTRY: dict[str, _Entry] = {}


def _settings_of(cls: type[Guidance]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys, required = [], []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        keys.append(p.name)
        if p.default is p.empty:
            required.append(p.name)
    return tuple(keys), tuple(required)


def register(name: str) -> Callable[[type[Guidance]], type[Guidance]]:
    """Class decorator: make ``create(name)`` (or ``create(f"{name}:ARG")``) build this
    :class:`~fields3d.guidance.Guidance`; sets the class's ``name``. Registering another class
    under a taken name raises InputError.

    Args:
        name: the prior's name in specs, a Python identifier (``"stable_diffusion"``).

    Returns:
        The decorator; it returns the class unchanged but for ``name``.

    Raises:
        InputError: ``name`` is not an identifier, the decorated object is not a
            :class:`~fields3d.guidance.Guidance` subclass, or ``name`` is taken by another class.

    Example:
        >>> from fields3d.guidance import Guidance, TargetGuidance, register
        >>> TargetGuidance.name  # set by the @register("target") line above its class
        'target'
        >>> register("target")(type("Other", (Guidance,), {}))
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: guidance 'target' is already registered to TargetGuidance
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(
            f"a guidance name must be an identifier like 'stable_diffusion', got {name!r}"
        )

    def decorate(cls: type[Guidance]) -> type[Guidance]:
        if not (isinstance(cls, type) and issubclass(cls, Guidance)):
            raise InputError(f"register({name!r}) decorates Guidance subclasses, got {cls!r}")
        old = _REGISTRY.get(name)
        if old is not None and old.cls.__qualname__ != cls.__qualname__:
            raise InputError(f"guidance {name!r} is already registered to {old.cls.__qualname__}")
        cls.name = name
        _REGISTRY[name] = _Entry(cls, *_settings_of(cls))
        return cls

    return decorate


def available() -> tuple[str, ...]:
    """The registered prior names, sorted (the names :func:`create` and :func:`parse_spec` take).

    Example:
        >>> from fields3d.guidance import available
        >>> available()  # a tuple of str
        ('stable_diffusion', 'target')
    """
    return tuple(sorted(_REGISTRY))


def _usages() -> str:
    return ", ".join(_REGISTRY[n].cls.spec_usage or n for n in available())


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"target:mesh.obj"`` -> ``("target", "mesh.obj")``; ``"stable_diffusion"`` ->
    ``("stable_diffusion", None)``. Only the first ``:`` splits (paths may hold more).

    Raises:
        InputError: ``spec`` is not a string, or names no registered prior.

    Example:
        >>> from fields3d.guidance import available, parse_spec
        >>> available()
        ('stable_diffusion', 'target')
        >>> parse_spec("target:meshes/mug.obj"), parse_spec("stable_diffusion")
        (('target', 'meshes/mug.obj'), ('stable_diffusion', None))
    """
    if not isinstance(spec, str):
        raise InputError(f"guidance must be a name such as {_usages()}, got {type(spec).__name__}")
    name, colon, arg = spec.partition(":")
    if name not in _REGISTRY:
        raise InputError(f"unknown guidance {name!r}; the known ones are: {_usages()}")
    return name, (arg if colon else None)


def create(spec: str, **settings) -> Guidance:
    """Build the prior ``spec`` names (see the module docstring and :func:`available`).

    Args:
        spec: ``"name"`` or ``"name:ARG"``.
        **settings: the prior's constructor arguments (``prompt``, ``device``, ``seed``, ...).

    Returns:
        The prior, ready to call.

    Raises:
        InputError: an unknown name, an argument after ``:`` for a prior that takes none (or an
            empty one), a setting the prior does not take, one it needs but lacks, or the
            prior's own checks. The priors' own errors (ModelNotFound, CheckpointError,
            BackendUnavailable) pass through.

    Example:
        >>> import pathlib, fields3d
        >>> from fields3d.guidance import create
        >>> spot = pathlib.Path(fields3d.__file__).parents[1] / "assets" / "meshes" / "spot.obj"
        >>> prior = create(f"target:{spot}", device="cpu", resolution=64)  # path=spot
        >>> type(prior).__name__, prior.name, prior.config()["resolution"]
        ('TargetGuidance', 'target', 64)
        >>> create("target:mesh.obj", colour=(1, 0, 0))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: guidance 'target' does not take 'colour'; its settings are: path, prompt, ...
    """
    name, arg = parse_spec(spec)
    entry = _REGISTRY[name]
    argument = entry.cls.spec_argument
    if arg is not None:
        if argument is None:
            raise InputError(f"guidance {name!r} takes no argument after ':', got {spec!r}")
        if not arg:
            raise InputError(
                f"guidance {spec!r} has an empty {argument} after ':'; write {entry.cls.spec_usage}"
            )
        if argument in settings:
            raise InputError(
                f"guidance {spec!r} gives {argument} twice: after ':' and as the setting {argument}"
            )
        settings = {**settings, argument: arg}
    unknown = [k for k in settings if k not in entry.keys]
    if unknown:
        raise InputError(
            f"guidance {name!r} does not take {_listed(unknown)}; its settings are: {', '.join(entry.keys)}"
        )
    missing = [k for k in entry.required if k not in settings]
    if missing:
        hint = (
            f" (write {entry.cls.spec_usage})"
            if argument in missing and entry.cls.spec_usage
            else ""
        )
        raise InputError(f"guidance {name!r} needs {_listed(missing)}{hint}")
    return entry.cls(**settings)


def _listed(keys: list) -> str:
    return ", ".join(repr(k) for k in keys)
