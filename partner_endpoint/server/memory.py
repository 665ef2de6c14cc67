"""Malloc arenas: the service's memory stays flat only with few of them.

glibc gives each thread that allocates its own arena (up to 8 per core), and
the thread pool that runs the database work spreads SQLite's allocations over
dozens of them. Measured with ``bench/soak.py`` (SQLite, 500 alerts/s): the
server grew from 290 MiB to a 570 MiB plateau with the default, and stayed at
243-270 MiB with two arenas, with no loss of throughput or latency.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

ARENAS = 2
_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas() -> None:
    """Cap arenas in this process (mallopt) and in the workers it starts (environment).

    A no-op where the C library is not glibc, and where the operator chose a value.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    os.environ["MALLOC_ARENA_MAX"] = str(ARENAS)  # read by glibc when a worker process starts
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(_M_ARENA_MAX, ARENAS)
    except OSError:
        pass
