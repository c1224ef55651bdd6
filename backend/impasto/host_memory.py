"""Host memory for the engines: freed blocks kept for reuse while an engine runs, given back when it returns.

glibc serves every allocation above its mmap threshold (≤ 32 MiB) with fresh pages from the kernel and unmaps them
on free, so a CPU optimization step that makes and drops the same large tensors again (VGG activations, their
gradients, the full-size gradient maps of the hypercolumn gather) pays a page fault for every 4 KiB of them, every
step.  ``reuse_freed_memory`` switches that off for the duration of an engine run (``mallopt``: no mmap, no trimming
of the heap), so a step reuses the previous step's blocks, and on the way out gives the free heap back to the kernel
(``malloc_trim``), so that a daemon's resident memory falls back after a job.  It is what PyTorch's CPU tuning guide
gets with jemalloc or tcmalloc, without a preloaded library; on a C library without these calls (macOS, musl) it
does nothing.

Nested and concurrent runs (several engine threads) share one setting: the first to enter sets it, the last to
leave restores glibc's defaults.

It is off unless ``IMPASTO_REUSE_FREED_MEMORY=1``: the kept blocks fragment and raise the peak resident memory, which
the time saved does not always repay (docs/optim.md, "Tried and not on by default", has the figures).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import threading
from typing import Callable, Iterator, TypeVar

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4          # mallopt parameters (malloc.h)
_GLIBC_MMAP_MAX, _GLIBC_TRIM_THRESHOLD = 65536, 128 * 1024
_KEEP_TRIM_THRESHOLD = 1 << 30

_lock = threading.Lock()
_users = 0

F = TypeVar("F", bound=Callable)


@functools.lru_cache(maxsize=None)
def _libc():
    """glibc's malloc tuning calls, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        log.debug("no mallopt/malloc_trim in this C library: freed host memory is managed as it comes")
        return None


def enabled() -> bool:
    """Whether engine runs keep their freed host memory (``IMPASTO_REUSE_FREED_MEMORY=1``; module docstring)."""
    return os.environ.get("IMPASTO_REUSE_FREED_MEMORY", "0") == "1"


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Within the block, freed host memory stays in the process for reuse (module docstring)."""
    global _users
    libc = _libc() if enabled() else None
    if libc is None:
        yield
        return
    with _lock:
        if _users == 0:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_TRIM_THRESHOLD)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                libc.mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX)
                libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_TRIM_THRESHOLD)
                libc.malloc_trim(0)


def reusing_freed_memory(fn: F) -> F:
    """``fn`` run inside ``reuse_freed_memory`` (for the engines' entry points)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with reuse_freed_memory():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
