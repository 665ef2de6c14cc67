"""Keys for authentication: cached in process, kept in step with the database.

The hot path (:meth:`KeyDirectory.cached`) touches neither the database nor a thread: a dictionary
lookup and a clock read. Everything else happens around it:

* **Misses** read the database (:meth:`load`), at most ``lookups`` at a time per process, so a flood
  of never-issued keys costs the database a bounded number of concurrent reads; the answer "no such
  key" is remembered in a bounded negative cache.
* **Changes** made in this process (an alert's revocation, the dashboard) drop the key at once
  through :meth:`key_changed` / :meth:`account_changed`. Changes made anywhere else arrive through
  the key change log, read every ``change_delay / 2`` seconds by :meth:`run_forever`.
* **Freshness is checked, not hoped for**: the cache is only believed while the last read of the
  log *started* less than ``change_delay`` ago. If the database is slow or away, every request asks
  it directly (and gets the usual 503 when it is down), so a key revoked anywhere is refused by
  every process within ``change_delay`` of the commit, whatever the load.

Traffic and last uses are counted beside it (:mod:`partner_endpoint.api.traffic`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from partner_endpoint.api.key_cache import KeyCache
from partner_endpoint.clock import SYSTEM_CLOCK, Clock
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.settings import Settings
from partner_endpoint.store import api_keys, key_changes
from partner_endpoint.store.db import read_transaction

log = logging.getLogger(__name__)

MAX_UNKNOWN = 10_000
"""Never-issued key hashes remembered (about 1.5 MB)."""
LOOKUPS = 4
"""Concurrent database reads for keys not in the cache, per process."""


class KeyDirectory:
    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        *,
        change_delay: float,
        max_keys: int,
        clock: Clock = SYSTEM_CLOCK,
        freshness: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._delay = change_delay
        self._clock = clock
        self._freshness = freshness
        """Whose monotonic clock says how old the last read of the log is (tests move it apart)."""
        self._cache = KeyCache(max_keys, MAX_UNKNOWN)
        self._lookups = asyncio.Semaphore(LOOKUPS)
        self._cursor: key_changes.Cursor | None = None
        self._synced_at = -math.inf
        self._syncing = asyncio.Lock()
        self._poll_failures = 0

    @classmethod
    def from_settings(
        cls, engine: Engine, metrics: Metrics, settings: Settings, clock: Clock
    ) -> KeyDirectory:
        return cls(
            engine,
            metrics,
            change_delay=settings.key_change_delay,
            max_keys=settings.auth_cache_size,
            clock=clock,
        )

    # --- the hot path ---------------------------------------------------------------------------

    def cached(self, key_hash: str) -> api_keys.AuthRecord | None:
        """The key's record if the cache has it and is known to be current; never blocks."""
        if self._freshness.monotonic() - self._synced_at > self._delay:
            return None
        return self._cache.get(key_hash)

    def is_unknown(self, key_hash: str) -> bool:
        return self._cache.is_unknown(key_hash)

    # --- misses -----------------------------------------------------------------------------------

    async def load(self, key_hash: str) -> api_keys.AuthRecord | None:
        """Read a key from the database and cache the answer; None if no key has this hash."""
        generation = self._cache.generation
        async with self._lookups:
            record = await run_in_threadpool(self._find, key_hash)
        self._metrics.api_key_lookups.labels(result="unknown" if record is None else "found").inc()
        if record is None:
            self._cache.put_unknown(key_hash)
            return None
        self._cache.put(key_hash, record, generation)
        return record

    def _find(self, key_hash: str) -> api_keys.AuthRecord | None:
        with read_transaction(self._engine) as conn:
            return api_keys.find_for_auth(conn, key_hash)

    # --- changes ----------------------------------------------------------------------------------

    def key_changed(self, key_id: int) -> None:
        """Call after committing a change to a key (revoked, flagged, deleted): it applies here at once."""
        self._cache.drop_key(key_id)

    def account_changed(self, account_id: int) -> None:
        """Call after committing a change to an account's keys or allowlist."""
        self._cache.drop_account(account_id)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Follow the key change log until ``stop``.

        The first read is the caller's, awaited at start-up, so the cache is believed from the
        first request on; this loop reads every ``change_delay / 2`` seconds after it."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._delay / 2)
            if stop.is_set():
                break
            await self.sync()

    async def sync(self) -> None:
        """Read the change log once and apply it; failures leave the cache to go stale (and unused).

        Reads never overlap: two first reads finishing out of order would clear the cache after a
        fill made in between, and two reads from one cursor would each move it on."""
        async with self._syncing:
            await self._sync()

    async def _sync(self) -> None:
        started = self._freshness.monotonic()
        try:
            changes, self._cursor = await run_in_threadpool(self._read_changes, self._cursor)
        except Exception as exc:
            self._poll_failures += 1
            self._metrics.key_change_polls.labels(result="error").inc()
            if self._poll_failures in (1, 10) or self._poll_failures % 100 == 0:
                log.error(
                    "cannot read the key change log; authenticating from the database",
                    extra={"fields": {"error": type(exc).__name__, "failures": self._poll_failures}},
                )
            return
        if changes is None:
            self._cache.clear()  # first read: whatever was filled before has no cursor to follow
        else:
            for change in changes:
                if change.everything:
                    self._cache.clear()
                if change.key_id is not None:
                    self._cache.drop_key(change.key_id)
                if change.account_id is not None:
                    self._cache.drop_account(change.account_id)
        self._poll_failures = 0
        self._metrics.key_change_polls.labels(result="ok").inc()
        self._synced_at = started

    def _read_changes(
        self, cursor: key_changes.Cursor | None
    ) -> tuple[list[key_changes.KeyChange] | None, key_changes.Cursor]:
        with read_transaction(self._engine) as conn:
            if cursor is None:
                return None, key_changes.start(conn)
            return key_changes.read(conn, cursor)
