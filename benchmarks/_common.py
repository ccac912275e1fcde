"""Helpers shared by the benchmarks: timing, device description, tables and JSON results.

Every benchmark times a callable with :func:`measure` (warm-up runs, then median/min/max over
repeats, synchronising around each run on CUDA), describes where it ran with :func:`environment`,
prints rows with :func:`print_table` and writes one JSON file with :func:`write_json`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_ints(text: str) -> list[int]:
    """``"16,17,18"`` or ``"16-18"`` -> ``[16, 17, 18]``."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> dict:
    """Time ``fn()``: ``warmup`` untimed runs, then ``repeats`` timed ones (wall clock, ms).

    On CUDA the device is synchronised before and after each timed run, so a figure covers all
    the work the call launched. Also records the process's CPU seconds (user, sys) and minor page
    faults over the timed runs: CPU time far below wall time x threads, or sys time and faults
    that jump between runs, point at a busy or memory-starved machine rather than the code.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times, before = [], resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "repeats": repeats,
        "warmup": warmup,
        "times_ms": times,
        "cpu_user_s": after.ru_utime - before.ru_utime,
        "cpu_sys_s": after.ru_stime - before.ru_stime,
        "minor_faults": after.ru_minflt - before.ru_minflt,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(device: torch.device) -> dict:
    """Name and resources of ``device`` (CPU model from /proc/cpuinfo, or the CUDA device)."""
    out = {
        "type": device.type,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(
            name=torch.cuda.get_device_name(device),
            capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 2**30, 1),
        )
    else:
        out["name"] = out["cpu"]
    return out


def environment(device: torch.device) -> dict:
    """Device, versions (``fields3d.info()``) and a UTC timestamp, for a result file."""
    import fields3d

    return {
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": describe_device(device),
        "versions": fields3d.info(),
    }


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print ``rows`` as plain text with right-aligned columns (no dependency beyond Python)."""
    cells = [[str(h) for h in headers]] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def fmt(v: object) -> str:
    """A table cell: ``-`` for None, floats to 3 significant digits (no exponent below 1e6)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def write_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` to ``path`` (parent folders created), indented; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path


def usable_device(name: str) -> torch.device | None:
    """``torch.device(name)`` (``"auto"``: cuda when torch sees a GPU, else cpu), or None after
    printing the error when cuda is asked for and torch sees no CUDA device (exit with 2)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return None
    return device
