"""Keep glibc from returning freed tensor memory to the OS between training steps.

A training step allocates and frees the same few buffers (a few MB each) hundreds of times a
second. glibc serves blocks above its mmap threshold with fresh mmap()s and unmaps them on free,
so every step pays ~400 page faults (measured on P1: 400 minor faults a step, 15-20% of the
step time). Raising the mmap and trim thresholds keeps those blocks in the heap, where they are
reused without faults. The cost is that the process keeps its peak heap until it exits.

Applied once per process by the trainer on Linux/glibc; set ``LOSSLAB_MALLOC_TUNING=0`` to skip it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
# glibc caps M_MMAP_THRESHOLD at HEAP_MAX_SIZE / 2 = 32 MiB on 64-bit systems.
_THRESHOLD = 32 * 1024 * 1024
_done = False


def keep_freed_memory_in_heap() -> bool:
    """Tune glibc malloc once; returns True if it was applied (now or before)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("LOSSLAB_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, 2 * _THRESHOLD) == 1 and ok
    ok = mallopt(_M_TOP_PAD, 16 * 1024 * 1024) == 1 and ok
    _done = ok
    return ok
