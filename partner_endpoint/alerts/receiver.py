"""``POST /v1/secret-scanning/github``: verify, parse, record, answer with feedback.

Nothing is parsed before the signature over the raw body checks out, and
nothing is written unless the batch holds a checksum-valid credential. The
cheap checks come first: the client's failure budget, the headers, the key
identifier (an unknown one is refused before a byte of the body is read), and
only then the body, verified off the event loop when it is large.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from partner_endpoint.alerts.batch import Alert, MalformedAlerts, feedback, parse_batch
from partner_endpoint.alerts.signatures import (
    KeysUnavailable,
    SignatureError,
    signature_headers,
    verify_signature,
)
from partner_endpoint.alerts.signing_keys import PublicKeyCache
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.services.leaks import respond
from partner_endpoint.settings import Settings
from partner_endpoint.store.leaks import NOTHING, BatchOutcome
from partner_endpoint.web.bodies import BodyTooLarge, read_body
from partner_endpoint.web.clients import ClientAddresses
from partner_endpoint.web.failures import FailureBudget

log = logging.getLogger(__name__)


VERIFY_OFF_LOOP_BYTES = 64 * 1024
"""Bodies from this size up are hashed and verified in the thread pool: 2 MiB takes milliseconds of
CPU, which on the event loop would stall every other request; for a small body the ECDSA check
(a fraction of a millisecond) costs about what the hop to a thread does."""


class AlertEndpoint:
    def __init__(
        self,
        engine: Engine,
        keys: PublicKeyCache,
        metrics: Metrics,
        settings: Settings,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        key_changed: Callable[[int], None] = lambda _key_id: None,
        mail_queued: Callable[[], None] = lambda: None,
    ) -> None:
        """``mail_queued()`` after a batch queued mail: a worker in this process sends it now, not at
        its next poll (an owner whose key was just revoked should hear at once)."""
        self._engine = engine
        self._key_changed = key_changed
        self._mail_queued = mail_queued
        self._keys = keys
        self._metrics = metrics
        self._settings = settings
        self._clock = clock
        self._clients = ClientAddresses(settings)
        self._failures = FailureBudget(settings.alert_failure_limit, settings.alert_failure_window, monotonic)

    async def handle(self, request: Request) -> Response:
        client = self._clients.key(request)
        if (retry_after := self._failures.exhausted(client)) is not None:
            self._metrics.alert_requests_limited.inc()
            return _error(429, "Too many failed alert requests", headers={"Retry-After": str(retry_after)})
        try:
            key_id, signature = signature_headers(request.headers)
            public_key = await self._keys.get(key_id)  # an unknown identifier: refused, body unread
            body = await read_body(request, self._settings.max_body_bytes)
            if len(body) >= VERIFY_OFF_LOOP_BYTES:
                await run_in_threadpool(verify_signature, public_key, signature, body)
            else:
                verify_signature(public_key, signature, body)
        except BodyTooLarge:
            self._failures.spend(client)
            limit = self._settings.max_body_bytes
            return _error(413, f"Request body exceeds the limit of {limit} bytes")
        except SignatureError as exc:
            self._failures.spend(client)
            self._metrics.signature_failures.labels(reason=exc.reason).inc()
            log.info("alert signature refused", extra={"fields": {"reason": exc.reason, "client": client}})
            return _error(401, "Invalid GitHub signature")
        except KeysUnavailable as exc:
            self._metrics.signature_failures.labels(reason=exc.reason).inc()
            log.error(f"no GitHub public key available: {exc}", extra={"fields": {"reason": exc.reason}})
            return _error(503, "GitHub public keys unavailable", headers={"Retry-After": "60"})
        self._metrics.alerts.inc()
        try:
            batch = parse_batch(body)
        except MalformedAlerts as exc:
            log.info("signed alert body malformed", extra={"fields": {"error": str(exc)}})
            return _error(400, f"Malformed alert batch: {exc}")
        alerts = batch.alerts
        if batch.rejected:
            self._metrics.rejected_entries.inc(len(batch.rejected))
            log.warning(
                "alert entries rejected; the rest of the batch is processed",
                extra={"fields": {"rejected": [(r.index, r.reason) for r in batch.rejected[:20]]}},
            )
        outcome = NOTHING
        if any(alert.is_credential for alert in alerts):  # else no database, and no thread, is needed
            outcome = await run_in_threadpool(self._record, alerts)
            for leak in outcome.leaks:  # committed: this process's API cache follows at once
                self._key_changed(leak.key_id)
            if outcome.leaks:
                self._mail_queued()
        answer = feedback(alerts, outcome.issued)
        true_positives = sum(entry["label"] == "true_positive" for entry in answer)
        self._metrics.tokens.labels(label="true_positive").inc(true_positives)
        self._metrics.tokens.labels(label="false_positive").inc(len(answer) - true_positives)
        for token_hash, leaked_key_id, action in outcome.actions:
            log.warning(
                "leaked key reported",
                extra={"fields": {"token_hash": token_hash, "key_id": leaked_key_id, "action": action}},
            )
        log.info(
            "alert batch processed",
            extra={
                "fields": {
                    "tokens": len(alerts),
                    "true_positives": len(outcome.actions),
                    "mails_queued": len(outcome.leaks),
                }
            },
        )
        return JSONResponse(answer)

    def _record(self, alerts: list[Alert]) -> BatchOutcome:
        return respond(
            self._engine,
            [alert.sighting for alert in alerts if alert.is_credential],
            policy=self._settings.leak_policy,
            now=self._clock(),
            sender=self._settings.mail_from,
        )


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
