"""``POST /v1/secret-scanning/<origin>``: admit, verify, parse, respond, answer as the origin expects.

One receiver per signed origin (:mod:`partner_endpoint.domain.origins`: GitHub, deps.dev, GitLab),
each with its own signing keys, metrics and log label. Nothing is parsed before the signature over
the raw body checks out, and nothing is written unless the batch holds a checksum-valid credential.
The cheap checks come first: the client's failure budget, the headers, the key identifier (an
unknown one is refused before a byte of the body is read), and only then the body, verified off the
event loop when it is large. What a report does is :mod:`partner_endpoint.alerts.reports`'.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from partner_endpoint.alerts.batch import MalformedAlerts, parse_batch
from partner_endpoint.alerts.refusals import Refused, admit, error, not_allowed
from partner_endpoint.alerts.reports import respond, sightings
from partner_endpoint.alerts.signatures import (
    KeysUnavailable,
    SignatureError,
    signature_headers,
    verify_signature,
)
from partner_endpoint.alerts.signing_keys import SigningKeys
from partner_endpoint.domain.origins import Origin
from partner_endpoint.ops.origin_metrics import OriginMetrics
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.web.bodies import BodyTooLarge, read_body
from partner_endpoint.web.clients import ClientAddresses
from partner_endpoint.web.failures import FailureBudget

__all__ = ["VERIFY_OFF_LOOP_BYTES", "AlertReceiver", "sightings"]

log = logging.getLogger(__name__)


VERIFY_OFF_LOOP_BYTES = 64 * 1024
"""Bodies from this size up are hashed and verified in the thread pool: 2 MiB takes milliseconds of
CPU, which on the event loop would stall every other request; for a small body the ECDSA check
(a fraction of a millisecond) costs about what the hop to a thread does."""


@dataclass(frozen=True, slots=True)
class AlertReceiver:
    origin: Origin
    keys: SigningKeys
    leaks: LeakService
    metrics: OriginMetrics
    clients: ClientAddresses
    failures: FailureBudget
    """Failed requests per client: bad signatures, oversize bodies (shared by every origin's route)."""
    max_body_bytes: int

    async def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return not_allowed("POST")
        client = self.clients.bucket(request)
        try:
            admit(self.failures, client, self.metrics)
            body = await self._verified_body(request, client)
        except Refused as refused:
            return refused.response
        self.metrics.batch()
        try:
            batch = parse_batch(body, fields=self.origin.fields, origin=self.origin.name)
        except MalformedAlerts as exc:
            return self._malformed(exc)
        answer = await respond(batch, self.leaks, self.metrics)
        if self.origin.answer == "feedback":
            return JSONResponse(answer)
        return Response(status_code=204)

    def _malformed(self, exc: MalformedAlerts) -> Response:
        """A signed body that is not an array: 400, unless the origin retries every 4xx (GitLab)."""
        fields = {"origin": self.origin.name, "error": str(exc)}
        if self.origin.answer == "feedback":
            log.info("signed alert body malformed", extra={"fields": fields})
            return error(400, f"Malformed alert batch: {exc}")
        # GitLab retries any answer of 400 or more, and the same body would fail again on every
        # retry: it is acknowledged (202, nothing done) and left to the log.
        log.error(
            "signed alert body malformed; acknowledged, as a retry cannot mend it", extra={"fields": fields}
        )
        return error(202, f"Malformed alert batch, acknowledged and not processed: {exc}")

    async def _verified_body(self, request: Request, client: str) -> bytes:
        """The raw body, once its signature checks out against a key the origin published."""
        platform = self.origin.platform
        try:
            key_id, signature = signature_headers(
                request.headers, self.origin.key_id_header, self.origin.signature_header
            )
            public_key = await self.keys.get(key_id)  # an unknown identifier: refused, body unread
            body = await read_body(request, self.max_body_bytes)
            if len(body) >= VERIFY_OFF_LOOP_BYTES:
                await run_in_threadpool(verify_signature, public_key, signature, body)
            else:
                verify_signature(public_key, signature, body)
        except BodyTooLarge as exc:
            self.failures.spend(client)
            raise Refused(error(413, str(exc))) from None
        except SignatureError as exc:
            self.failures.spend(client)
            self.metrics.refused(exc.reason)
            log.info(
                "alert signature refused",
                extra={"fields": {"origin": self.origin.name, "reason": exc.reason, "client": client}},
            )
            raise Refused(error(401, f"Invalid {platform} signature")) from None
        except KeysUnavailable as exc:
            self.metrics.refused(exc.reason)
            log.error(
                f"no {platform} public key available: {exc}",
                extra={"fields": {"origin": self.origin.name, "reason": exc.reason}},
            )
            raise Refused(
                error(503, f"{platform} public keys unavailable", headers={"Retry-After": "60"})
            ) from None
        return body
