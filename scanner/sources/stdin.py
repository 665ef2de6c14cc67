"""Standard input as a source (``-`` on the command line): one unit, one input, read here."""

from __future__ import annotations

import errno
import io
import sys
from collections.abc import Callable
from typing import cast

from scanner.findings import Finding, Location
from scanner.sources.base import Hit, Opened, Warn
from scanner.stats import ScanStats

STDIN_PATH = b"-"


class StdinSource:
    unit_name = "files"
    total: tuple[int, int] | None = None
    short_read_is_end = False  # a pipe gives short reads
    pool_after: int | None = None

    def units(self, stats: ScanStats, warn: Warn) -> tuple[None]:
        return (None,)

    def open(self, unit: None, stats: ScanStats, warn: Warn) -> Opened:
        yield STDIN_PATH, stdin_reader(), None  # a read error ends the scan: stdin cannot be skipped

    def findings(self, hits: list[Hit], stats: ScanStats, warn: Warn) -> list[Finding]:
        location = Location(path=STDIN_PATH, stdin=True)
        return [Finding(match, location.within(inner)) for _, inner, matches in hits for match in matches]

    def label(self, key: bytes) -> str:
        return "-"

    def finish(self, stats: ScanStats, warn: Warn) -> None:
        pass

    def close(self) -> None:
        pass


def stdin_reader() -> Callable[[memoryview], int]:
    """``readinto`` over the binary standard input; pipes give short reads."""
    if sys.stdin is None:  # started with stdin closed (``<&-``)
        raise OSError(errno.EBADF, "-: standard input is closed")
    stream = cast(io.RawIOBase, getattr(sys.stdin.buffer, "raw", sys.stdin.buffer))  # either has readinto

    def readinto(view: memoryview) -> int:
        return stream.readinto(view) or 0

    return readinto
