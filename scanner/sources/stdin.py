"""Standard input as a source (``-`` on the command line)."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

STDIN_PATH = b"-"


def stdin_reader() -> Callable[[memoryview], int]:
    """``readinto`` over the binary standard input; pipes give short reads."""
    if sys.stdin is None:  # started with stdin closed (``<&-``)
        raise OSError(errno.EBADF, "-: standard input is closed")
    stream = sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer

    def readinto(view: memoryview) -> int:
        return stream.readinto(view) or 0

    return readinto
