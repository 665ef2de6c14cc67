"""The Token Revocation API that self-managed GitLab instances call (GitLab's ``token_revocation_api.md``).

``GET /v1/revocable_token_types`` names the types we revoke; ``POST /v1/revoke_tokens`` takes
``[{"type", "token", "location"}]``. Both are authenticated by the instance's pre-shared token in
``Authorization`` (GitLab sends it bare; ``Bearer <token>`` is accepted too), never by the API's
Bearer keys: these routes sit before the API's mount. Answers: 204 when every entry was taken,
400 for a body that is not an array or holds entries that are malformed or of a type we do not
revoke (the rest of the batch is processed all the same), 401, 405, 413 and 429 with
``Retry-After``. Reports go through the same leak service as every origin's: one revocation, one mail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import rules
from partner_endpoint.alerts.batch import MalformedAlerts, parse_batch
from partner_endpoint.alerts.refusals import EVERY_METHOD, Refused, admit, error, not_allowed
from partner_endpoint.alerts.reports import respond
from partner_endpoint.domain.origins import SELF_MANAGED_GITLAB, Fields
from partner_endpoint.ops.origin_metrics import OriginMetrics
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.services.revocation_tokens import Admitted, Limited, RevocationTokenService
from partner_endpoint.web.bodies import BodyTooLarge, read_body
from partner_endpoint.web.clients import ClientAddresses
from partner_endpoint.web.failures import FailureBudget

log = logging.getLogger(__name__)

TYPES_PATH = "/v1/revocable_token_types"
REVOKE_PATH = "/v1/revoke_tokens"
REVOCABLE_TYPES = tuple(f"gitleaks_rule_id_{fmt.name}" for fmt in rules.FORMATS)
"""GitLab names a finding's type after its secret detection rule: ``gitleaks_rule_id_`` and the rule's
id, lower case, spaces made ``_``. Rules with the ids ``soundpiece_api_key`` and
``soundpiece_webhook_secret`` (docs/leak-report-origins.md) make these."""
FIELDS = Fields(url="location", source=None)


@dataclass(frozen=True, slots=True)
class RevocationApi:
    tokens: RevocationTokenService
    leaks: LeakService
    metrics: OriginMetrics
    clients: ClientAddresses
    failures: FailureBudget
    """Shared with the alert routes: failed requests per client."""
    max_body_bytes: int

    def routes(self) -> list[Route]:
        """Every usual method reaches these handlers (a wrong one is their 405, not the API's Bearer 401)."""
        return [
            Route(TYPES_PATH, self.token_types, methods=EVERY_METHOD),
            Route(REVOKE_PATH, self.revoke_tokens, methods=EVERY_METHOD),
        ]

    async def token_types(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return not_allowed("GET")
        try:
            await self._authenticated(request, self.clients.bucket(request))
        except Refused as refused:
            return refused.response
        return JSONResponse({"types": list(REVOCABLE_TYPES)})

    async def revoke_tokens(self, request: Request) -> Response:
        if request.method != "POST":
            return not_allowed("POST")
        client = self.clients.bucket(request)
        try:
            instance = await self._authenticated(request, client)
            body = await read_body(request, self.max_body_bytes)
        except BodyTooLarge as exc:
            self.failures.spend(client)
            return error(413, str(exc))
        except Refused as refused:
            return refused.response
        self.metrics.batch()
        try:
            batch = parse_batch(body, fields=FIELDS, origin=SELF_MANAGED_GITLAB, types=REVOCABLE_TYPES)
        except MalformedAlerts as exc:
            log.info(
                "revocation request malformed", extra={"fields": {"instance": instance, "error": str(exc)}}
            )
            return error(400, f"Malformed revocation request: {exc}")
        log.info(
            "revocation request",
            extra={"fields": {"instance": instance, "entries": len(batch.alerts) + len(batch.rejected)}},
        )
        await respond(batch, self.leaks, self.metrics)
        if not batch.rejected:
            return Response(status_code=204)
        return JSONResponse(
            {
                "detail": "Some entries are malformed or of a type not revoked here (see GET "
                f"{TYPES_PATH}); the other {len(batch.alerts)} were processed. Do not retry.",
                "rejected": [{"index": r.index, "reason": r.reason} for r in batch.rejected[:100]],
            },
            status_code=400,
        )

    async def _authenticated(self, request: Request, client: str) -> str:
        """The name of the instance whose token the request carries; else Refused (401 or 429)."""
        admit(self.failures, client, self.metrics)
        presented = _token(request.headers.get("authorization", ""))
        admitted = await run_in_threadpool(self.tokens.admit, presented) if presented else None
        if isinstance(admitted, Admitted):
            return admitted.name
        if isinstance(admitted, Limited):
            self.metrics.limited()
            log.warning("revocation API rate limit reached", extra={"fields": {"client": client}})
            raise Refused(
                error(429, "Too many revocation requests", headers={"Retry-After": str(admitted.retry_after)})
            )
        self.failures.spend(client)
        self.metrics.refused("bad_token" if presented else "missing_token")
        log.info("revocation API token refused", extra={"fields": {"client": client}})
        raise Refused(error(401, "Invalid or missing revocation API token"))


def _token(authorization: str) -> str:
    """The token in ``Authorization: <token>`` (as GitLab sends it) or ``Authorization: Bearer <token>``."""
    scheme, _, rest = authorization.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else authorization.strip()
