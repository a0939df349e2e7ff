"""Allocator setting for bulk array work: reuse freed memory instead of faulting in fresh pages.

The cleaning makes a few hundred temporary arrays of tens of MB each. glibc serves every one of
them with a fresh ``mmap`` and returns it with ``munmap`` on free, so each array first pays a
page fault per 4 KiB page (on a VM, that is most of the time of a simple numpy operation).
Within :func:`reuse_freed_memory` large blocks come from the heap and freed ones stay there for
the next array; on exit the defaults are set back and the free memory is returned to the OS
(``malloc_trim``). Peak memory is unchanged (the same arrays are alive at the same time);
elsewhere than on glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULT_TRIM, _DEFAULT_MMAP = 128 * 1024, 128 * 1024  # glibc's documented defaults
_BULK = 1 << 30
_lock = threading.Lock()
_depth = 0


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return None


_LIBC = _glibc()


@contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Keep freed large blocks for reuse while the block runs (see module docstring)."""
    global _depth
    if _LIBC is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _LIBC.mallopt(_M_MMAP_THRESHOLD, _BULK)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, -1)  # -1: never trim
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _LIBC.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_MMAP)
                _LIBC.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM)
                _LIBC.malloc_trim(0)
