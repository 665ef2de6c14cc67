"""An origin's public keys (GitHub's, deps.dev's, GitLab's): fetched with httpx, cached, refetched sparingly.

One instance per origin, each with its own document, cache and refetch limit. GitHub advises
caching and refetching only when an unknown identifier arrives.
Anyone can send unknown identifiers, so a refetch happens at most once per
``refetch_interval``: per deployment when the cache is given the database's
:class:`~partner_endpoint.store.key_documents.SharedKeyDocument` (the service does that: every
process and replica then shares one document and one limit), else per process. A failed fetch
never empties the cache, and until a fetch
succeeds again an unknown identifier is 503 (the origin retries), not 401. A fetch is bounded
in time and size as a whole (httpx's timeout is per read, so a trickling or
endless answer would otherwise hold the fetch lock, and the memory, forever).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from partner_endpoint.alerts.signatures import KeysUnavailable, UnknownKeyIdentifier
from partner_endpoint.clock import SYSTEM_CLOCK, Clock
from partner_endpoint.domain.origins import GITHUB, Origin
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.ops.origin_metrics import OriginMetrics
from partner_endpoint.store.key_documents import SharedDocument, SharedKeyDocument

log = logging.getLogger(__name__)

_SHARED_POLL = 0.05
"""Seconds between looks at the shared row while another process fetches."""
_TAKEOVER_AFTER = 3.0
"""Seconds after which a fetch another process claimed and has not finished may be claimed again: its
process may have died (a kill -9 mid-fetch), and the request waiting meanwhile has not had its body
read yet, which the server's request timeout (10 s) also counts. A fetch takes well under a second;
while the origin is slower than this, a second fetch may start every 3 s, not once a minute."""
MAX_DOCUMENT_BYTES = 1024 * 1024
"""GitHub's document is a few kilobytes; anything near this is not it."""


class KeyDocumentError(ValueError):
    """An origin's key document could not be used."""


def parse_key_document(document: Any) -> dict[str, ec.EllipticCurvePublicKey]:
    """Map key identifier -> P-256 public key; entries that are not usable P-256 keys are skipped.

    KeyDocumentError if no entry is usable."""
    if not isinstance(document, Mapping) or not isinstance(document.get("public_keys"), list):
        raise KeyDocumentError("no public_keys list")
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for entry in document["public_keys"]:
        if not isinstance(entry, Mapping):
            continue
        key_id, pem = entry.get("key_identifier"), entry.get("key")
        if not isinstance(key_id, str) or not isinstance(pem, str):
            continue
        try:
            key = load_pem_public_key(pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError, TypeError, UnsupportedAlgorithm):
            log.warning("skipping an unreadable public key", extra={"fields": {"key_id": key_id}})
            continue
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            keys[key_id] = key
    if not keys:  # then it is not the origin's document, and cannot prove any identifier unknown
        raise KeyDocumentError("no usable P-256 key")
    return keys


class SigningKeys:
    """An origin's signing keys: key identifier -> public key, from its key document, on demand."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str | None,
        metrics: Metrics,
        *,
        origin: Origin = GITHUB,
        token: str | None = None,
        refetch_interval: float = 60.0,
        fetch_timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        shared: SharedKeyDocument | None = None,
        pinned: Mapping[str, ec.EllipticCurvePublicKey] | None = None,
    ) -> None:
        """``pinned``: keys trusted besides the document, never fetched (the local test signer).
        ``url`` None: no document (only the test signer is trusted), so any other identifier is unknown."""
        self._client = client
        self._url = url
        self._origin = origin
        self._metrics = OriginMetrics(metrics, origin.name)
        self._token = token
        self._refetch_interval = refetch_interval
        self._fetch_timeout = fetch_timeout
        self._clock = clock
        self._shared = shared
        self._pinned = dict(pinned or {})
        self._keys: dict[str, ec.EllipticCurvePublicKey] = dict(self._pinned)
        self._last_fetch: float | None = None
        self._last_fetch_failed = False
        self._last_error = "no fetch yet"
        """Why the last fetch failed, for the log line of an alert we cannot verify."""
        self._next_fetch: datetime | None = None
        """When the next fetch may start (the refetch limit), for the same log line."""
        self._shared_seen: datetime | None = None
        """``fetched_at`` of the shared document last merged into :attr:`_keys`."""
        self._lock = asyncio.Lock()

    async def get(self, key_id: str) -> ec.EllipticCurvePublicKey:
        """The key for ``key_id``; raises UnknownKeyIdentifier (401) or KeysUnavailable (503)."""
        if (key := self._keys.get(key_id)) is not None:
            self._metrics.key_cache_hit()
            return key
        if self._url is None:
            raise UnknownKeyIdentifier()
        async with self._lock:
            if key_id not in self._keys:
                if self._shared is not None:
                    await self._refresh_shared(self._shared, key_id)
                else:
                    await self._fetch_if_due()
        if (key := self._keys.get(key_id)) is not None:
            return key
        if len(self._keys) == len(self._pinned) or self._last_fetch_failed:
            # Maybe a key the origin rotated in while its document is unreadable: 503 makes it
            # retry the delivery, a 401 might lose it. A 401 needs a document that lacks the key.
            raise KeysUnavailable(self._why_unavailable())
        raise UnknownKeyIdentifier()

    def _why_unavailable(self) -> str:
        """What the log says when a key is missing: what the fetch met, and when the next may run."""
        when = "now" if self._next_fetch is None else f"at {self._next_fetch:%Y-%m-%dT%H:%M:%SZ}"
        return f"fetching {self._url} failed: {self._last_error}; next fetch allowed {when}"

    async def _fetch_if_due(self) -> None:
        """Fetch from this process alone, at most once per refetch interval."""
        if self._last_fetch is None or self._clock.monotonic() - self._last_fetch >= self._refetch_interval:
            self._last_fetch = self._clock.monotonic()
            self._next_fetch = self._clock.now() + timedelta(seconds=self._refetch_interval)
            await self._fetch()

    async def _refresh_shared(self, shared: SharedKeyDocument, key_id: str) -> None:
        """Take what another process fetched; fetch only when no process did within the interval.

        A process that loses the claim to a fetch still running elsewhere waits for its outcome (at
        most a few seconds), rather than answer 503 for a key that is on its way; a claim left
        unfinished longer (its process died) is taken over. Without the
        database (down, or not migrated) the limit falls back to this process alone.
        """
        try:
            state = await run_in_threadpool(shared.load)
        except SQLAlchemyError as exc:
            log.warning(
                "shared key document unavailable",
                extra={"fields": {"origin": self._origin.name, "error": repr(exc)}},
            )
            await self._fetch_if_due()
            return
        self._take(state)
        if key_id in self._keys:
            return
        interval = timedelta(seconds=self._refetch_interval)
        takeover = min(self._fetch_timeout + 1, _TAKEOVER_AFTER)
        abandoned_after = timedelta(seconds=takeover)
        for _ in range(math.ceil((takeover + 1) / _SHARED_POLL)):  # counted: clocks may be fake
            now = self._clock.now()
            if state.due(now, interval, abandoned_after):
                if await run_in_threadpool(shared.claim, now, interval, abandoned_after):
                    self._next_fetch = now + interval
                    document = await self._fetch()
                    await run_in_threadpool(shared.save, document, now)
                    return
                state = await run_in_threadpool(shared.load)  # another process claimed it meanwhile
            if not state.in_flight:
                break
            await asyncio.sleep(_SHARED_POLL)
            state = await run_in_threadpool(shared.load)
        self._take(state)

    def _take(self, state: SharedDocument) -> None:
        self._last_fetch_failed = state.failed
        if state.attempted_at is not None:
            self._next_fetch = state.attempted_at + timedelta(seconds=self._refetch_interval)
        if state.failed and self._last_error == "no fetch yet":
            self._last_error = "the last fetch, by another process, failed (its log says why)"
        if state.document is not None and state.fetched_at != self._shared_seen:
            self._merge(state.document)
            self._shared_seen = state.fetched_at

    def _merge(self, document: str) -> None:
        try:
            # Merge rather than replace: a key the origin stops listing may still sign a retried delivery.
            self._keys.update(parse_key_document(json.loads(document)))
        except (ValueError, RecursionError) as exc:  # stored by a process that could read it
            log.warning(
                "shared key document unreadable",
                extra={"fields": {"origin": self._origin.name, "error": repr(exc)}},
            )

    async def _fetch(self) -> str | None:
        """Fetch and merge the document; its text, or None if it could not be fetched or used."""
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            async with asyncio.timeout(self._fetch_timeout):
                body = await self._download(headers)
            text = body.decode("utf-8")
            keys = parse_key_document(json.loads(text))
        except (httpx.HTTPError, ValueError, TimeoutError, RecursionError) as exc:
            self._last_fetch_failed = True
            self._last_error = _describe(exc)
            self._metrics.key_fetch("failure")
            log.warning(
                f"fetching {self._origin.platform} public keys failed; keeping the cache",
                extra={
                    "fields": {
                        "origin": self._origin.name,
                        "error": _describe(exc),
                        "cached_keys": len(self._keys),
                    }
                },
            )
            return None
        self._last_fetch_failed = False
        self._last_error = "none"
        self._metrics.key_fetch("success")
        self._keys.update(keys)
        log.info(
            f"fetched {self._origin.platform} public keys",
            extra={"fields": {"origin": self._origin.name, "key_ids": sorted(keys)}},
        )
        return text

    async def _download(self, headers: dict[str, str]) -> bytes:
        """The response body, refused once it passes :data:`MAX_DOCUMENT_BYTES`."""
        assert self._url is not None  # get() fetches nothing without a document
        async with self._client.stream("GET", self._url, headers=headers) as response:
            response.raise_for_status()
            if int(response.headers.get("content-length") or 0) > MAX_DOCUMENT_BYTES:
                raise KeyDocumentError("key document too large")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_DOCUMENT_BYTES:
                    raise KeyDocumentError("key document too large")
                chunks.append(chunk)
        return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    """``ConnectError: [Errno 111] Connection refused``; a timeout says so (its message is empty)."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"{type(exc).__name__}: no whole answer within the fetch timeout"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__
