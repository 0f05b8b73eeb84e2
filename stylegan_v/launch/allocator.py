"""Keep freed memory in the process on CPU runs: glibc's default costs big CPU steps most of their time.

glibc serves every allocation over the mmap threshold (32 MiB at most) with a fresh ``mmap`` and returns it
on ``free``, so each training step faults its activations back in page by page — about 4 million minor
faults and 16 s of system time per 256² StyleGAN-V step on a 2-core VM (``benchmarks/bench_launch.py``). Telling
malloc never to mmap, never to trim, and to grow the heap in 1 GiB pads takes the same step from 22 s to
12 s for ~1.3 GB more resident memory. ``mallopt`` applies to the running process, so every rank calls
:func:`keep_freed_memory` itself at job start; nothing depends on environment variables reaching it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

TOP_PAD_BYTES = 1 << 30  # grow the heap in 1 GiB steps
TRIM_THRESHOLD_BYTES = (1 << 31) - 1  # never give the top of the heap back (int max)


def keep_freed_memory() -> bool:
    """Switch glibc malloc to keep freed memory; returns False where glibc is absent (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return False
    ok = all(libc.mallopt(param, value) == 1 for param, value in (
        (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), (M_TOP_PAD, TOP_PAD_BYTES)))
    log.info("glibc malloc keeps freed memory (mmap off, no trim, 1 GiB top pad): %s", "on" if ok else "failed")
    return ok
