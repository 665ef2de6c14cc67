"""A one-line progress display on stderr, for scans that take a while.

Shown only when stderr is a terminal, and only once a scan has run for a
second, so quick runs (a pre-commit hook) print nothing extra.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from scanner.sources.base import Source

DELAY = 1.0


class ProgressLine:
    def __init__(self, stream: TextIO = sys.stderr, *, unit: str = "files", total: int | None = None) -> None:
        self._stream = stream
        self.unit = unit
        self.total = total
        self._start = time.monotonic()
        self._shown = False

    def update(self, count: int, nbytes: int, total_bytes: int | None = None) -> None:
        elapsed = time.monotonic() - self._start
        if elapsed < DELAY:
            return
        rate = nbytes / elapsed if elapsed else 0.0
        text = f"{count:,} {self.unit}"
        if self.total:
            text += f" of {self.total:,}"
        text += f", {human_bytes(nbytes)}, {human_bytes(rate)}/s"
        if total_bytes and rate > 0 and nbytes < total_bytes:
            text += f", ETA {format_duration((total_bytes - nbytes) / rate)}"
        self._stream.write(f"\r\x1b[K{text}")
        self._stream.flush()
        self._shown = True

    def show(self, source: Source, count: int, nbytes: int) -> None:
        """The runner's progress callback: the source names what is counted and knows the totals."""
        self.unit = source.unit_name
        total = source.total
        self.total = total[0] if total else None
        self.update(count, nbytes, total[1] if total else None)

    def close(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
