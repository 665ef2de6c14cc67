"""Dashboard sign-in links and sessions, kept only as SHA-256 hashes of what the mail or cookie holds.

A link is single-use by a conditional UPDATE (only the first redemption
matches ``used_at IS NULL``) and dies after its lifetime. A session belongs to
an owner address and shows one of that address's accounts; it ends when idle
for too long, at its absolute lifetime, at sign-out, or as soon as the account
it shows no longer has that owner address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, delete, func, insert, or_, select, update

from partner_endpoint.store.db import inserted_id
from partner_endpoint.store.models import accounts, dashboard_sessions, sign_in_links


@dataclass(frozen=True, slots=True)
class RedeemedLink:
    email: str
    next_path: str | None


@dataclass(frozen=True, slots=True)
class Session:
    session_id: int
    email: str
    account_id: int
    created_at: datetime
    last_seen_at: datetime


def create_link(
    conn: Connection, token_hash: str, email: str, next_path: str | None, now: datetime, lifetime: timedelta
) -> None:
    conn.execute(
        insert(sign_in_links).values(
            token_hash=token_hash,
            email=email,
            next_path=next_path,
            created_at=now,
            expires_at=now + lifetime,
            used_at=None,
        )
    )


def _usable(token_hash: str, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        sign_in_links.c.token_hash == token_hash,
        sign_in_links.c.used_at.is_(None),
        sign_in_links.c.expires_at > now,
    )


def usable_link(conn: Connection, token_hash: str, now: datetime) -> str | None:
    """The address the link would sign in now, or None (for the page that asks first; redeems nothing)."""
    return conn.execute(select(sign_in_links.c.email).where(*_usable(token_hash, now))).scalar_one_or_none()


def redeem_link(conn: Connection, token_hash: str, now: datetime) -> RedeemedLink | None:
    """Use the link up; None if it is unknown, used or expired. Two racing redemptions: one wins."""
    row = conn.execute(
        update(sign_in_links)
        .where(*_usable(token_hash, now))
        .values(used_at=now)
        .returning(sign_in_links.c.email, sign_in_links.c.next_path)
    ).first()
    return None if row is None else RedeemedLink(row[0], row[1])


def start_session(conn: Connection, token_hash: str, email: str, account_id: int, now: datetime) -> int:
    result = conn.execute(
        insert(dashboard_sessions).values(
            token_hash=token_hash, email=email, account_id=account_id, created_at=now, last_seen_at=now
        )
    )
    return inserted_id(result)


def find_session(
    conn: Connection, token_hash: str, now: datetime, idle: timedelta, lifetime: timedelta
) -> Session | None:
    """The live session with this hash whose account still has the session's owner address."""
    row = conn.execute(
        select(
            dashboard_sessions.c.id,
            dashboard_sessions.c.email,
            dashboard_sessions.c.account_id,
            dashboard_sessions.c.created_at,
            dashboard_sessions.c.last_seen_at,
        )
        .join(accounts, accounts.c.id == dashboard_sessions.c.account_id)
        .where(
            dashboard_sessions.c.token_hash == token_hash,
            dashboard_sessions.c.last_seen_at > now - idle,
            dashboard_sessions.c.created_at > now - lifetime,
            func.lower(accounts.c.owner_email) == dashboard_sessions.c.email,
        )
    ).first()
    return None if row is None else Session(*row)


def touch_session(conn: Connection, session_id: int, now: datetime) -> None:
    conn.execute(
        update(dashboard_sessions).where(dashboard_sessions.c.id == session_id).values(last_seen_at=now)
    )


def show_account(conn: Connection, session_id: int, account_id: int) -> None:
    """Switch the account the session shows (the caller checked that the owner address matches)."""
    conn.execute(
        update(dashboard_sessions).where(dashboard_sessions.c.id == session_id).values(account_id=account_id)
    )


def end_session(conn: Connection, token_hash: str) -> bool:
    result = conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.token_hash == token_hash))
    return result.rowcount == 1


def prune(conn: Connection, now: datetime, idle: timedelta, lifetime: timedelta) -> None:
    """Forget expired sessions and links (indexed; called now and then, not per page view)."""
    conn.execute(
        delete(dashboard_sessions).where(
            or_(
                dashboard_sessions.c.last_seen_at <= now - idle,
                dashboard_sessions.c.created_at <= now - lifetime,
            )
        )
    )
    conn.execute(delete(sign_in_links).where(sign_in_links.c.expires_at <= now))
