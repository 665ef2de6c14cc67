"""The Token Revocation API's callers: one pre-shared token (or more, while rotating) per self-managed
GitLab instance, and each instance's request budget.

A token is 256 random bits, shown once when made; only its SHA-256 hash is kept, and a presented
token is compared by hash, in constant time. Each instance may make ``limit`` requests per
``window``, counted in the database so every process and replica shares the count: GitLab's
documentation asks for a rate-limited API, and a leaked token then costs little before it is revoked.
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

import rules
from partner_endpoint.clock import Clock
from partner_endpoint.domain.labels import clean_label
from partner_endpoint.settings import Settings
from partner_endpoint.store import rate_limits
from partner_endpoint.store import revocation_tokens as tokens
from partner_endpoint.store.db import read_transaction, write_transaction
from partner_endpoint.store.revocation_tokens import TokenRecord

PREFIX = "sprt_"
"""Soundpiece revocation token: so a token found in a configuration file says what it is."""
_LENGTH = len(PREFIX) + 43
"""The prefix and 32 random bytes in URL-safe base64."""


@dataclass(frozen=True, slots=True)
class NewToken:
    token_id: int
    name: str
    token: str = field(repr=False)
    """Shown once; never stored."""


@dataclass(frozen=True, slots=True)
class Admitted:
    token_id: int
    name: str


@dataclass(frozen=True, slots=True)
class Limited:
    retry_after: int
    """Seconds."""


class RevocationTokenService:
    def __init__(self, engine: Engine, clock: Clock, *, limit: int, window: float) -> None:
        self._engine = engine
        self._clock = clock
        self._limit = limit
        self._window = timedelta(seconds=window)

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings, clock: Clock) -> RevocationTokenService:
        return cls(
            engine, clock, limit=settings.revocation_rate_limit, window=settings.revocation_rate_window
        )

    def create(self, name: str) -> NewToken:
        """A new token for the instance ``name`` (named as a key's label is: one printable line)."""
        name = clean_label(name)
        token = PREFIX + secrets.token_urlsafe(32)
        with write_transaction(self._engine) as conn:
            token_id = tokens.create(conn, name, rules.identity(token), token[-4:], self._clock.now())
        return NewToken(token_id, name, token)

    def every(self) -> list[TokenRecord]:
        with read_transaction(self._engine) as conn:
            return tokens.every(conn)

    def revoke(self, token_id: int) -> bool:
        with write_transaction(self._engine) as conn:
            return tokens.revoke(conn, token_id, self._clock.now())

    def admit(self, presented: str) -> Admitted | Limited | None:
        """The instance a request comes from, Limited when it has used its budget, None if the token is
        not one we issued and still honour. Counts the request (a spent budget costs no write)."""
        if len(presented) != _LENGTH or not presented.startswith(PREFIX):
            return None  # not even the shape of one: no database read
        token_hash = rules.identity(presented)
        now = self._clock.now()
        with read_transaction(self._engine) as conn:
            record = tokens.active(conn, token_hash)
            if record is None or not hmac.compare_digest(record.token_hash, token_hash):
                return None
            if rate_limits.spent(conn, self._bucket(record), now, self._window) >= self._limit:
                return Limited(math.ceil(self._window.total_seconds()))
        with write_transaction(self._engine) as conn:
            if rate_limits.hit(conn, self._bucket(record), now, self._window) > self._limit:
                return Limited(math.ceil(self._window.total_seconds()))
            tokens.used(conn, record.token_id, now)
        return Admitted(record.token_id, record.name)

    @staticmethod
    def _bucket(record: TokenRecord) -> str:
        return f"revocation-token:{record.token_id}"
