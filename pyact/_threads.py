"""Threads of the kernels: pyact.set_num_threads / pyact.get_num_threads.

Kernels split large buffers across OpenMP threads (csrc/parallel.pxi).  A call
uses at most get_num_threads() threads, which is OpenMP's default team size in
the calling thread (OMP_NUM_THREADS, or threadpoolctl's threadpool_limits, which
calls omp_set_num_threads) capped by pyact's own process-wide limit.

set_num_threads(n) sets that limit and OpenMP's default in the calling thread, so
get_num_threads() returns n there; other Python threads use at most n (at most
their own OpenMP default).  PYACT_NUM_THREADS=n at import does the same.  A
build without OpenMP always uses one thread.
"""
from __future__ import annotations

import operator
import os

from . import _runtime

__all__ = ["set_num_threads", "get_num_threads", "openmp"]

ENV = "PYACT_NUM_THREADS"


def openmp() -> bool:
    """Whether the kernels were built with OpenMP (else they are serial)."""
    return _runtime.openmp_version() > 0


def _positive_int(n, what: str) -> int:
    if isinstance(n, bool) or not hasattr(type(n), "__index__"):
        raise TypeError(f"{what} must be a positive integer, got {n!r}")
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"{what} must be a positive integer, got {n}")
    return n


def set_num_threads(n: int) -> None:
    """Use at most n threads per kernel call (n >= 1); large arrays only are split."""
    n = _positive_int(n, "set_num_threads(): n")
    if n > 2**31 - 1:
        raise ValueError(f"set_num_threads(): n = {n} is too large")
    _runtime.set_thread_limit(n)
    _runtime.omp_set_num_threads(n)


def get_num_threads() -> int:
    """The most threads a kernel call in this thread uses now."""
    if not openmp():
        return 1
    threads = _runtime.omp_max_threads()
    limit = _runtime.thread_limit()
    return min(threads, limit) if limit > 0 else threads


def _init_from_environment() -> None:
    value = os.environ.get(ENV, "").strip()
    if not value:
        return
    try:
        n = _positive_int(int(value), ENV)
        set_num_threads(n)
    except (TypeError, ValueError):
        raise ImportError(f"pyact: {ENV}={value!r} is not a positive integer") from None


_init_from_environment()
