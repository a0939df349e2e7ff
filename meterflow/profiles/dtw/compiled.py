"""Which DTW kernels run: the vector LLVM-IR ones (``vector_kernels.py``) while they compile, else
the plain numba ones (``plain_kernels.py``: identical distances, slower), after ONE warning.

The vector kernels are compiled on first use for each kind of arguments; a numba or LLVM error
then (an llvmlite or CPU that cannot lower the vector IR) switches this process to the plain
kernels for good.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from numba.core.errors import NumbaError

from . import plain_kernels, vector_kernels

log = logging.getLogger(__name__)

KERNELS = ("rows_parallel", "rows_serial", "cross_parallel")
COMPILE_ERRORS = (NumbaError, RuntimeError)  # llvmlite reports invalid IR as RuntimeError
_failed: list[str] = []  # the vector kernels' compile errors, once one failed
_lock = threading.Lock()


def vector_kernels_failed() -> bool:
    """Whether this process fell back to the plain kernels."""
    return bool(_failed)


def run_kernel(name: str, *args: Any) -> None:
    """Call the kernel ``name`` of ``KERNELS`` with its arguments, which end with ``wv, out``:
    ``wv`` the WDTW weights, None for plain DTW."""
    if not _failed:
        try:
            getattr(vector_kernels, name)(*args)
            return
        except COMPILE_ERRORS as exc:
            _fall_back(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
    x, wv, out = args[0], args[-2], args[-1]
    weights = np.ones(x.shape[1]) if wv is None else wv
    getattr(plain_kernels, name)(*args[:-2], weights, out)


def _fall_back(error: str) -> None:
    """Switch to the plain kernels, warning once (threads may fail at the same time)."""
    with _lock:
        first = not _failed
        _failed.append(error)
    if first:
        log.warning(
            "the vector DTW kernel cannot be compiled (%s); using the plain numba kernel "
            "instead (identical distances, slower)",
            error,
        )
