"""Per-key traffic, counted in this process on the hot path and added to the database in the background.

:meth:`TrafficRecorder.count` is one dictionary update and a clock read: no database, no thread,
no lock (it runs on the event loop only). Every ``flush_interval`` the background loop swaps the
counts out and hands them to :class:`~partner_endpoint.services.traffic.TrafficService`, which adds
them in one transaction, so totals are exact across workers, processes and replicas once flushed.
A flush that fails keeps its counts for the next one: nothing is lost while the database is away.

Memory is bounded: past ``max_pairs`` (key, address, minute) cells, a key's further addresses are
counted as ``other``; past twice that, further keys too (key 0). Either is logged and counted in
``soundpiece_traffic_overflow_total``, so a page that shows "other" says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.concurrency import run_in_threadpool

from partner_endpoint.clock import Clock
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.store.traffic import LastUse

log = logging.getLogger(__name__)

OTHER = "other"
"""The address of counts past the bound (and of requests with no address: a Unix socket)."""
OTHER_KEY = 0
"""The key of counts past the second bound."""

from partner_endpoint.store.traffic import Cell as _Cell  # noqa: E402


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one process counted since its last flush: raw, converted off the event loop."""

    cells: dict[_Cell, list[float]]
    """Cell -> [requests, refused, first (epoch seconds), last]."""
    last_uses: dict[int, tuple[float, str]]
    """Key -> (epoch seconds, address) of its latest accepted request."""

    def __bool__(self) -> bool:
        return bool(self.cells)

    def uses(self) -> list[LastUse]:
        return [LastUse(key_id, _at(at), address) for key_id, (at, address) in self.last_uses.items()]

    def merge(self, later: Snapshot) -> Snapshot:
        """This snapshot (which could not be written) with the counts made since."""
        if not self.cells and not self.last_uses:
            return later  # the usual case, every flush: copying 100,000 cells held the event loop 0.14 s
        cells = {k: list(v) for k, v in self.cells.items()}
        for key, (n, r, first, last) in later.cells.items():
            cell = cells.get(key)
            if cell is None:
                cells[key] = [n, r, first, last]
            else:
                cell[0] += n
                cell[1] += r
                cell[2] = min(cell[2], first)
                cell[3] = max(cell[3], last)
        uses = dict(self.last_uses)
        for key_id, use in later.last_uses.items():
            if key_id not in uses or uses[key_id][0] < use[0]:
                uses[key_id] = use
        return Snapshot(cells, uses)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class TrafficRecorder:
    def __init__(self, clock: Clock, metrics: Metrics, *, max_pairs: int) -> None:
        self._clock = clock
        self._metrics = metrics
        self._max = max_pairs
        self._cells: dict[_Cell, list[float]] = {}
        self._last: dict[int, tuple[float, str]] = {}
        self._overflowed = 0

    def count(self, key_id: int, address: str, *, refused: bool = False) -> None:
        """One request with a known key: accepted, or refused (revoked, deleted, outside the allowlist)."""
        now = self._clock.now().timestamp()
        cell = (key_id, address, int(now // 60))
        counts = self._cells.get(cell)
        if counts is None:
            cell = self._within_bounds(cell)
            counts = self._cells.get(cell)
            if counts is None:
                counts = self._cells[cell] = [0, 0, now, now]
        counts[1 if refused else 0] += 1
        counts[3] = now
        if not refused:
            self._last[key_id] = (now, address)

    def _within_bounds(self, cell: _Cell) -> _Cell:
        size = len(self._cells)
        if size < self._max:
            return cell
        self._overflowed += 1
        key_id, _address, minute = cell
        return (key_id, OTHER, minute) if size < 2 * self._max else (OTHER_KEY, OTHER, minute)

    def take(self) -> Snapshot:
        """Everything counted so far; counting starts afresh."""
        snapshot = Snapshot(self._cells, self._last)
        self._cells, self._last = {}, {}
        if self._overflowed:
            self._metrics.traffic_overflow.inc(self._overflowed)
            log.warning(
                "traffic past its bound: counted as 'other'",
                extra={"fields": {"requests": self._overflowed, "max_pairs": self._max}},
            )
            self._overflowed = 0
        return snapshot


async def run_forever(
    recorder: TrafficRecorder,
    write: Callable[[Snapshot], object],
    prune: Callable[[], object],
    stop: asyncio.Event,
    *,
    interval: float,
    prune_every: timedelta = timedelta(hours=1),
) -> None:
    """Write what was counted every ``interval`` seconds until ``stop``, then once more; prune hourly."""
    unwritten = Snapshot({}, {})
    since_prune = prune_every  # prune at the first chance: a restart may have missed hours
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        unwritten = await _write(unwritten.merge(recorder.take()), write)
        since_prune += timedelta(seconds=interval)
        if since_prune >= prune_every:
            since_prune = timedelta(0)
            with contextlib.suppress(Exception):
                await run_in_threadpool(prune)
        if stop.is_set():
            break


async def _write(snapshot: Snapshot, write: Callable[[Snapshot], object]) -> Snapshot:
    """Write ``snapshot``; what could not be written comes back, for the next try."""
    if not snapshot:
        return snapshot
    try:
        await run_in_threadpool(write, snapshot)
    except Exception as exc:
        log.error(
            "cannot record traffic; kept for the next try", extra={"fields": {"error": type(exc).__name__}}
        )
        return snapshot
    return Snapshot({}, {})
