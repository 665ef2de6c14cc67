"""``POST /v1/secret-scanning/github``: admit, verify, parse, respond, answer with feedback.

Nothing is parsed before the signature over the raw body checks out, and nothing is written
unless the batch holds a checksum-valid credential. The cheap checks come first: the client's
failure budget, the headers, the key identifier (an unknown one is refused before a byte of the
body is read), and only then the body, verified off the event loop when it is large. What a
report does (record, revoke or flag, mail) is :class:`~partner_endpoint.services.leaks.LeakService`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

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
from partner_endpoint.alerts.signing_keys import SigningKeys
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.store.leaks import NOTHING, BatchOutcome, Sighting
from partner_endpoint.web.bodies import BodyTooLarge, read_body
from partner_endpoint.web.clients import ClientAddresses
from partner_endpoint.web.failures import FailureBudget

log = logging.getLogger(__name__)


VERIFY_OFF_LOOP_BYTES = 64 * 1024
"""Bodies from this size up are hashed and verified in the thread pool: 2 MiB takes milliseconds of
CPU, which on the event loop would stall every other request; for a small body the ECDSA check
(a fraction of a millisecond) costs about what the hop to a thread does."""


class _Refused(Exception):
    """The answer to a request that is not a verified alert batch."""

    def __init__(self, response: Response) -> None:
        self.response = response


def sightings(alerts: Sequence[Alert]) -> list[Sighting]:
    """The reported credentials as the store records them: hashes and where, never the tokens."""
    return [
        Sighting(a.token_hash, a.type, a.url, a.source, a.location_hash) for a in alerts if a.is_credential
    ]


@dataclass(frozen=True, slots=True)
class AlertReceiver:
    keys: SigningKeys
    leaks: LeakService
    metrics: Metrics
    clients: ClientAddresses
    failures: FailureBudget
    """Failed requests per client: bad signatures, oversize bodies."""
    max_body_bytes: int

    async def handle(self, request: Request) -> Response:
        client = self.clients.bucket(request)
        try:
            self._admit(client)
            body = await self._verified_body(request, client)
        except _Refused as refused:
            return refused.response
        self.metrics.alerts.inc()
        try:
            batch = parse_batch(body)
        except MalformedAlerts as exc:
            log.info("signed alert body malformed", extra={"fields": {"error": str(exc)}})
            return _error(400, f"Malformed alert batch: {exc}")
        if batch.rejected:
            self.metrics.rejected_entries.inc(len(batch.rejected))
            log.warning(
                "alert entries rejected; the rest of the batch is processed",
                extra={"fields": {"rejected": [(r.index, r.reason) for r in batch.rejected[:20]]}},
            )
        reported = sightings(batch.alerts)
        outcome = await run_in_threadpool(self.leaks.respond, reported) if reported else NOTHING
        answer = feedback(batch.alerts, outcome.issued)
        self._account(batch.alerts, answer, outcome)
        return JSONResponse(answer)

    def _admit(self, client: str) -> None:
        """Refuse a client that failed too often, before any work."""
        if (retry_after := self.failures.exhausted(client)) is not None:
            self.metrics.alert_requests_limited.inc()
            raise _Refused(
                _error(429, "Too many failed alert requests", headers={"Retry-After": str(retry_after)})
            )

    async def _verified_body(self, request: Request, client: str) -> bytes:
        """The raw body, once its signature checks out against a published key."""
        try:
            key_id, signature = signature_headers(request.headers)
            public_key = await self.keys.get(key_id)  # an unknown identifier: refused, body unread
            body = await read_body(request, self.max_body_bytes)
            if len(body) >= VERIFY_OFF_LOOP_BYTES:
                await run_in_threadpool(verify_signature, public_key, signature, body)
            else:
                verify_signature(public_key, signature, body)
        except BodyTooLarge:
            self.failures.spend(client)
            detail = f"Request body exceeds the limit of {self.max_body_bytes} bytes"
            raise _Refused(_error(413, detail)) from None
        except SignatureError as exc:
            self.failures.spend(client)
            self.metrics.signature_failures.labels(reason=exc.reason).inc()
            log.info("alert signature refused", extra={"fields": {"reason": exc.reason, "client": client}})
            raise _Refused(_error(401, "Invalid GitHub signature")) from None
        except KeysUnavailable as exc:
            self.metrics.signature_failures.labels(reason=exc.reason).inc()
            log.error(f"no GitHub public key available: {exc}", extra={"fields": {"reason": exc.reason}})
            raise _Refused(
                _error(503, "GitHub public keys unavailable", headers={"Retry-After": "60"})
            ) from None
        return body

    def _account(self, alerts: Sequence[Alert], answer: list[dict[str, str]], outcome: BatchOutcome) -> None:
        """Metrics and log lines of a processed batch (tokens by hash only)."""
        true_positives = sum(entry["label"] == "true_positive" for entry in answer)
        self.metrics.tokens.labels(label="true_positive").inc(true_positives)
        self.metrics.tokens.labels(label="false_positive").inc(len(answer) - true_positives)
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


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
