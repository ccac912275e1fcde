"""``OUTDIR/manifest.jsonl``: one JSON line per finished shape, appended atomically.

Each record is written by one ``os.write`` of the whole line (newline included) to the file opened
with ``O_APPEND``, then ``fsync``-ed: the kernel places an ``O_APPEND`` write at the end of the file
in one step, so a driver killed between two shapes leaves whole lines only, and two drivers
appending to the same manifest never interleave their lines. :func:`read_manifest` still ignores
a last line without its newline (a disk that filled mid-write), with a warning, and never
rewrites the file.

A record holds ``name``, ``input`` (absolute path), ``status`` (``"done"`` or ``"failed"``),
``outputs`` (paths relative to OUTDIR by kind: ``mesh``, ``picture``, ``report``, ``field``),
``seconds``, ``mesh`` (vertex and face counts), ``metrics`` (against ``gt`` when paired, else
``{}``), ``error`` (None, or the message) with ``error_kind`` (``"input"``: the file or settings
are bad and a rerun would fail the same way; ``"worker"``: the process running it died;
``"error"``: anything else), ``fingerprint`` (settings and the input file's size and mtime; a
rerun skips a shape only when these match), ``attempt`` (1 + Ray's retries, when known),
``host``, ``pid`` and ``finished`` (UTC time).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

MANIFEST = "manifest.jsonl"


class Manifest:
    """Appends records to ``path`` (created if missing); ``with Manifest(path) as m: m.append(rec)``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> Manifest:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def append(self, record: dict) -> None:
        """Write ``record`` as one line in one ``os.write``, then fsync (see the module docstring)."""
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):  # a full disk: the line is torn, the reader skips it
            raise OSError(28, f"wrote {written} of {len(line)} bytes of a manifest line", self.path)
        os.fsync(self._fd)


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Every record of the manifest at ``path`` in the order written (``[]`` when there is none).

    A last line without its newline is skipped with a warning; an unreadable line elsewhere too
    (a file edited by hand), so one bad line never loses the others.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        torn = number == len(lines)  # the text after the last newline
        try:
            record = json.loads(raw)
            if torn or not isinstance(record, dict):
                raise ValueError
        except ValueError:
            what = "an incomplete last line" if torn else f"line {number}, which is not a record"
            warnings.warn(f"{path}: skipping {what}", stacklevel=2)
            continue
        records.append(record)
    return records


def latest(records: list[dict]) -> dict[str, dict]:
    """The last record of each input (keyed by its ``input`` path)."""
    out: dict[str, dict] = {}
    for record in records:
        out[record.get("input", "")] = record
    return out
