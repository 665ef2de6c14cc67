"""API authentication: ``Authorization: Bearer spk_…``, the account's IP allowlist, last-used tracking.

Every failure gets the same 401 body, so a caller learns nothing about which
check failed; the reason goes to the log, with the token's hash only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine
from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, BaseUser
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

import rules
from partner_endpoint.networks import (
    IPAddress,
    Network,
    contains,
    forwarded_client,
    parse_address,
    parse_networks,
)
from partner_endpoint.settings import Settings
from partner_endpoint.store import keys
from partner_endpoint.store.db import read_transaction, write_transaction

log = logging.getLogger(__name__)

UNAUTHORIZED_DETAIL = "Missing or invalid Authorization header"


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


def bearer_token(header: str | None) -> str:
    """The token of ``Bearer <token>``; the scheme is case-insensitive (RFC 7235)."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("missing or malformed Authorization header")
    return token


def client_address(
    conn: HTTPConnection, proxy_header: str | None, trusted_proxies: tuple[Network, ...]
) -> IPAddress | None:
    """The caller's address: the peer, or, behind trusted proxies, who connected to the outermost one.

    Every line of ``proxy_header`` counts (see :func:`networks.forwarded_client`).
    """
    peer = parse_address(conn.client.host if conn.client else None)
    if not proxy_header:
        return peer
    return forwarded_client(peer, conn.headers.getlist(proxy_header), trusted_proxies)


def refusal(record: keys.AuthRecord, address: IPAddress | None) -> str | None:
    """Why a known key may not be used from ``address``, or None. A flagged key still works."""
    if record.status == "revoked":
        return "revoked key"
    if record.allowlist and not contains(record.allowlist, address):
        return "address not in allowlist"
    return None


class ApiKeyBackend(AuthenticationBackend):
    def __init__(self, engine: Engine, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._proxy_header = settings.trusted_proxy_header
        self._trusted_proxies = parse_networks(settings.trusted_proxies)
        self._interval = timedelta(seconds=settings.last_used_interval)
        self._clock = clock

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        token = bearer_token(conn.headers.get("authorization"))
        if rules.recognise(token) is not rules.API_KEY:
            raise AuthenticationError("not a checksum-valid API key")  # no database query for these
        token_hash = rules.identity(token)
        address = client_address(conn, self._proxy_header, self._trusted_proxies)
        record = await run_in_threadpool(self._check, token_hash, address)
        return AuthCredentials(["authenticated"]), ApiKeyUser(record.account_id, record.key_id, record.label)

    def _check(self, token_hash: str, address: IPAddress | None) -> keys.AuthRecord:
        with read_transaction(self._engine) as conn:
            record = keys.find_for_auth(conn, token_hash)
        if record is None or (reason := refusal(record, address)):
            reason = "unknown key" if record is None else reason
            log.info(
                "authentication refused",
                extra={"fields": {"reason": reason, "token_hash": token_hash, "client": str(address)}},
            )
            raise AuthenticationError(reason)
        now = self._clock()
        if record.last_used_at is None or now - record.last_used_at >= self._interval:
            with write_transaction(self._engine) as conn:
                keys.touch_last_used(conn, record.key_id, now, self._interval)
        return record


def unauthorized(_conn: HTTPConnection, _exc: Exception) -> Response:
    return JSONResponse(
        {"detail": UNAUTHORIZED_DETAIL}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )
