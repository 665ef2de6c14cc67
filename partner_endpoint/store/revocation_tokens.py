"""The Token Revocation API's pre-shared tokens: only their SHA-256 hashes, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from partner_endpoint.store.db import NotFound, inserted_id
from partner_endpoint.store.models import revocation_tokens as table


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: int
    name: str
    token_suffix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    token_hash: str


def create(conn: Connection, name: str, token_hash: str, token_suffix: str, now: datetime) -> int:
    values = {"name": name, "token_hash": token_hash, "token_suffix": token_suffix, "created_at": now}
    return inserted_id(conn.execute(insert(table).values(**values)))


def active(conn: Connection, token_hash: str) -> TokenRecord | None:
    """The unrevoked token with this hash, if there is one."""
    row = conn.execute(
        select(*_COLUMNS).where(table.c.token_hash == token_hash, table.c.revoked_at.is_(None))
    ).one_or_none()
    return TokenRecord(*row) if row else None


def used(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(table).where(table.c.id == token_id).values(last_used_at=now))


def every(conn: Connection) -> list[TokenRecord]:
    """Every token, revoked ones too, oldest first."""
    return [TokenRecord(*row) for row in conn.execute(select(*_COLUMNS).order_by(table.c.id))]


def revoke(conn: Connection, token_id: int, now: datetime) -> bool:
    """Whether this call revoked it (False: it was revoked already); NotFound if there is no such token."""
    if conn.execute(select(table.c.id).where(table.c.id == token_id)).one_or_none() is None:
        raise NotFound(f"no revocation token {token_id}")
    result = conn.execute(
        update(table).where(table.c.id == token_id, table.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount == 1


_COLUMNS = (
    table.c.id,
    table.c.name,
    table.c.token_suffix,
    table.c.created_at,
    table.c.last_used_at,
    table.c.revoked_at,
    table.c.token_hash,
)
