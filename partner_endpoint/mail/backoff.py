"""Retry schedule for mail delivery. Pure."""

from __future__ import annotations


def backoff_seconds(attempts: int, *, base: float = 30.0, cap: float = 3600.0) -> float:
    """Delay before the next try after ``attempts`` failures: 30 s, 60 s, 120 s, ... at most an hour."""
    if attempts < 1:
        return 0.0
    return float(min(cap, base * 2 ** min(attempts - 1, 32)))
