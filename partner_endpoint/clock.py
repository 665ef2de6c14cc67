"""Time, injected everywhere as one object: tests pass one they move by hand.

Two clocks, never confused: :meth:`Clock.now` is the wall clock (UTC), for what is stored and
shown; :meth:`Clock.monotonic` only ever moves forward, for intervals (rate limits, refetch
limits, cache freshness), which a wall clock jumping back or forth must not stretch or cut.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The wall clock, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for intervals only)."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
