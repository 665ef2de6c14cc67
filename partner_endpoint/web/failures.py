"""Failure budgets per client: a token bucket each, bounded in number. Pure; the clock is passed in.

A client may fail ``limit`` times in a row, then once more per ``window / limit`` seconds. Only
failures spend the budget, so a client that is refused for failing too often is not kept out longer
by asking again. Per process: with N workers a client has up to N budgets.
"""

from __future__ import annotations

import math

from partner_endpoint.clock import Clock

_EARNED = 1 - 1e-9
"""A token counts as earned when this close to whole (floating point: window * (limit / window) < limit)."""
MAX_CLIENTS = 100_000
"""Buckets kept at most; the longest untouched goes first (bounded memory under many addresses)."""


class FailureBudget:
    def __init__(self, limit: int, window: float, clock: Clock, max_clients: int = MAX_CLIENTS) -> None:
        self._capacity = float(limit)
        self._rate = limit / window if limit > 0 else 0.0
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    def exhausted(self, client: str) -> int | None:
        """Seconds until ``client`` may fail again, or None if it may now."""
        if not self.enabled or client not in self._buckets:
            return None
        tokens = self._tokens(client)
        return None if tokens >= _EARNED else math.ceil((1 - tokens) / self._rate)

    def spend(self, client: str) -> int | None:
        """Count one failure; None if there was room for it, else seconds until there is (nothing spent)."""
        if not self.enabled:
            return None
        tokens = self._tokens(client)
        if tokens < _EARNED:
            return math.ceil((1 - tokens) / self._rate)
        self._buckets.pop(client, None)  # re-inserted last: the dict's order is least recently spent first
        if len(self._buckets) >= self._max_clients:
            del self._buckets[next(iter(self._buckets))]
        self._buckets[client] = (max(0.0, tokens - 1), self._clock.monotonic())
        return None

    def _tokens(self, client: str) -> float:
        tokens, when = self._buckets.get(client, (self._capacity, 0.0))
        return min(self._capacity, tokens + (self._clock.monotonic() - when) * self._rate)
