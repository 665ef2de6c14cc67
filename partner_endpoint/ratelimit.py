"""Per-client limits on failed requests: a token bucket per client address, in memory, bounded.

A client may fail ``burst`` times at once and then once every ``1 / per_second`` seconds; past
that, its requests are refused before any work is done. Only failures are counted, so a client
that never fails (GitHub, whose every alert is signed) is never limited, unless it shares its
address with one that fails: behind a proxy, configure the trusted proxy header, or every client
shares the proxy's budget. Each worker process keeps its own buckets, so with N workers a
client gets up to N times the burst. At most ``max_clients`` buckets are kept; the least
recently failed is forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class FailureLimiter:
    def __init__(
        self,
        burst: int,
        per_second: float,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``burst`` 0 turns the limit off."""
        self._burst = burst
        self._rate = per_second
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._burst > 0

    def retry_after(self, client: Hashable) -> int:
        """0 if ``client`` may make a request now, else the whole seconds until it may."""
        if not self.enabled or (bucket := self._refilled(client)) is None or bucket.tokens >= 1:
            return 0
        if self._rate <= 0:
            return 3600
        return max(1, math.ceil((1 - bucket.tokens) / self._rate))

    def failed(self, client: Hashable) -> None:
        """Count one failed request of ``client``."""
        if not self.enabled:
            return
        bucket = self._refilled(client) or _Bucket(float(self._burst), self._clock())
        bucket.tokens = max(0.0, bucket.tokens - 1)
        self._buckets[client] = bucket
        self._buckets.move_to_end(client)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)

    def _refilled(self, client: Hashable) -> _Bucket | None:
        bucket = self._buckets.get(client)
        if bucket is None:
            return None
        now = self._clock()
        bucket.tokens = min(float(self._burst), bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket
