"""Writing output files: atomically (a temporary file beside the target, then a rename), and with
a named error when the target cannot be a file (it is a folder, or its folder cannot be made)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InputError


def prepare_output(path: str | os.PathLike) -> Path:
    """``path`` as a Path whose folder exists (created with its parents).

    Raises:
        InputError: as :func:`check_output`, or its folder cannot be created all the same.
    """
    path = check_output(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the folder {path.parent} for {path.name} ({exc.strerror or exc}); "
            "pass an output path in a folder you can write"
        ) from exc
    return path


def check_output(path: str | os.PathLike) -> Path:
    """``path`` as a Path, checked without creating anything: a long job calls it first, so an
    output that cannot be written fails before the work, not after it.

    Raises:
        InputError: ``path`` is a folder, a file stands where a folder of it must go, or the
            nearest existing folder cannot be written to.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; pass a file path")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(
            f"cannot create the folder {path.parent} for {path.name} ({existing} is a file); "
            "pass an output path in a folder you can write"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"cannot write {path}: no permission to write in {existing}; pass an output path in a "
            "folder you can write"
        )
    return path


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` (folders created), then rename it over ``path``.

    The file gets the permissions a plain ``open(path, "wb")`` would give (mkstemp's are 0600).

    Raises:
        InputError: as :func:`prepare_output`, or the folder cannot be written to.
    """
    path = prepare_output(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(
            f"cannot write {path} ({exc.strerror or exc}); pass an output path in a folder you "
            "can write"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if hasattr(os, "fchmod"):  # POSIX
                os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
