"""Freed host memory kept for reuse (glibc's malloc), set when the core is first loaded.

glibc hands every allocation of 32 MB or more (and, before its threshold adapts, of 128 kB or
more) to ``mmap`` and gives it back to the kernel on ``free``. A training step's large tensors
(2^18 points' features: 32 MB; a hash grid's table gradient: 52 MB) are then fresh pages each step,
faulted in and zeroed by the kernel 4 kB at a time: 20 ms to allocate and fill a 32 MB tensor on a
2-core EPYC against 1 ms to fill one reused, which was a third of the hash grid's
forward + backward step (benchmarks/RESULTS.md). :func:`keep_freed_memory` tells glibc to serve
every allocation from its heap (``M_MMAP_MAX`` 0) and to keep up to 2 GB of freed memory at the
heap's top (``M_TRIM_THRESHOLD``), as torch's CUDA caching allocator keeps device memory: the
process's resident size stays at its peak instead of shrinking between steps. A loop's first few
steps still grow the heap (a freed block cannot serve torch's aligned request for the same size,
which asks for the alignment on top, until freed neighbours merge); after that its steps reuse
memory without page faults (tests/test_memory.py).

Set ``FIELDS3D_KEEP_FREED_MEMORY=0`` before the first fields3d op to leave glibc's defaults.
Elsewhere than glibc (macOS, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ENV = "FIELDS3D_KEEP_FREED_MEMORY"
M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # bytes of free memory at the heap's top kept (the largest int)

_state = {"kept": False}


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (see the module doc); True where it now does.

    False where ``FIELDS3D_KEEP_FREED_MEMORY=0`` is set or the C library is not glibc. Calling it
    again changes nothing.
    """
    if _state["kept"]:
        return True
    if os.environ.get(ENV, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt, version = libc.mallopt, libc.gnu_get_libc_version  # glibc only
    except (OSError, AttributeError):
        return False
    del version
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _state["kept"] = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return _state["kept"]


def keeps_freed_memory() -> bool:
    """Whether :func:`keep_freed_memory` has taken effect in this process."""
    return _state["kept"]
