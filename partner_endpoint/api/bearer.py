"""API authentication: ``Authorization: Bearer spk_…``, the account's IP allowlist, last-used tracking.

Every failure gets the same 401 body, so a caller learns nothing about which
check failed; the reason goes to the log, with the token's hash only. A client
that fails too often (see :mod:`partner_endpoint.web.failures`) gets 429 instead,
and its keys that are not in the cache are not looked up meanwhile.

A key in the cache is authenticated without the database or a thread
(:mod:`partner_endpoint.api.key_directory`).
"""

from __future__ import annotations

import logging

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, BaseUser
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

import rules
from partner_endpoint.api.key_directory import KeyDirectory
from partner_endpoint.api.traffic import OTHER, TrafficRecorder
from partner_endpoint.domain.networks import (
    IPAddress,
    contains,
)
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.store import api_keys
from partner_endpoint.web.clients import ClientAddresses
from partner_endpoint.web.failures import FailureBudget

log = logging.getLogger(__name__)

UNAUTHORIZED_DETAIL = "Missing or invalid Authorization header"
RATE_LIMITED_DETAIL = "Too many failed authentication attempts; retry later"


class ApiKeyUser(BaseUser):
    def __init__(self, account_id: int, key_id: int, label: str) -> None:
        self.account_id = account_id
        self.key_id = key_id
        self.label = label

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.label

    @property
    def identity(self) -> str:
        return str(self.key_id)


class Refused(Exception):
    """Why a request is not authenticated: ``reason`` is a metrics label, ``detail`` goes to the log."""

    def __init__(self, reason: str, detail: str, token_hash: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.token_hash = token_hash


class RateLimited(AuthenticationError):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed authentication attempts")
        self.retry_after = retry_after


def bearer_token(header: str | None) -> str:
    """The token of ``Bearer <token>``; the scheme is case-insensitive (RFC 7235)."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Refused("malformed", "missing or malformed Authorization header")
    return token


def refusal(record: api_keys.AuthRecord, address: IPAddress | None) -> tuple[str, str] | None:
    """Why a known key may not be used from ``address`` (reason, detail), or None. A flagged key works."""
    if record.status == "revoked":
        return "revoked", "revoked key"
    if record.allowlist and not contains(record.allowlist, address):
        return "allowlist", "address not in allowlist"
    return None


class ApiKeyBackend(AuthenticationBackend):
    def __init__(
        self,
        directory: KeyDirectory,
        budget: FailureBudget,
        clients: ClientAddresses,
        metrics: Metrics,
        traffic: TrafficRecorder,
    ) -> None:
        self._directory = directory
        self._budget = budget
        self._clients = clients
        self._metrics = metrics
        self._traffic = traffic

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        try:
            record = await self._check(conn)
        except Refused as refused:
            raise self._failed(conn, refused) from None
        return AuthCredentials(["authenticated"]), ApiKeyUser(record.account_id, record.key_id, record.label)

    async def _check(self, conn: HTTPConnection) -> api_keys.AuthRecord:
        token = bearer_token(conn.headers.get("authorization"))
        if len(token) != rules.API_KEY.length:
            raise Refused("malformed", "not an API key")
        token_hash = rules.identity(token)
        record = self._directory.cached(token_hash)  # a hit is an issued key: its checksum is right
        if record is None:
            if rules.recognise(token) is not rules.API_KEY:
                raise Refused("malformed", "not a checksum-valid API key")  # no database query for these
            if self._directory.is_unknown(token_hash):
                raise Refused("unknown", "unknown key", token_hash)
            if (retry_after := self._budget.exhausted(self._clients.bucket(conn))) is not None:
                raise self._limited(retry_after)  # its misses would reach the database
            record = await self._directory.load(token_hash)
            if record is None:
                raise Refused("unknown", "unknown key", token_hash)
        address, bucket = self._clients.identify(conn)
        why = refusal(record, address)
        # No address (a Unix socket): counted as "other", neither a new address nor one of the owner's.
        counted_as = OTHER if address is None else bucket
        self._traffic.count(record.key_id, counted_as, refused=why is not None)
        if why:
            raise Refused(*why, token_hash)
        return record

    def _failed(self, conn: HTTPConnection, refused: Refused) -> AuthenticationError:
        self._metrics.api_auth_failures.labels(reason=refused.reason).inc()
        client = self._clients.bucket(conn)
        if (retry_after := self._budget.spend(client)) is not None:
            return self._limited(retry_after)
        log.info(
            "authentication refused",
            extra={"fields": {"reason": str(refused), "token_hash": refused.token_hash, "client": client}},
        )
        return AuthenticationError(str(refused))

    def _limited(self, retry_after: int) -> RateLimited:
        self._metrics.api_rate_limited.inc()
        return RateLimited(retry_after)


def unauthorized(_conn: HTTPConnection, exc: Exception) -> Response:
    if isinstance(exc, RateLimited):
        return JSONResponse(
            {"detail": RATE_LIMITED_DETAIL}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )
    return JSONResponse(
        {"detail": UNAUTHORIZED_DETAIL}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )
