"""The mail outbox table: written in the transaction that decided to send, drained by the mail worker.

Rows hold finished messages; what a message says is the mail package's business, not the store's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, update

from partner_endpoint.store.db import upsert
from partner_endpoint.store.models import mail_outbox

CLAIM_LIMIT = 10
LEASE = timedelta(minutes=10)
"""How long a claimed row is hidden from other workers; a crashed worker's rows come back after it.
Longer than a whole claim at the SMTP timeout (10 x 30 s), so a slow server does not cause double sends."""


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    id: int
    message_id: str
    recipient: str
    message: str
    attempts: int


def enqueue(
    conn: Connection,
    *,
    key_id: int,
    leak_event_id: int,
    message_id: str,
    recipient: str,
    message: str,
    now: datetime,
) -> bool:
    """Queue one message about one leak event; False if it was already queued (redelivered alert)."""
    stmt = (
        upsert(conn, mail_outbox)
        .values(
            key_id=key_id,
            leak_event_id=leak_event_id,
            message_id=message_id,
            recipient=recipient,
            message=message,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )
    return conn.execute(stmt).rowcount == 1


def claim(conn: Connection, now: datetime, limit: int = CLAIM_LIMIT) -> list[OutgoingMail]:
    """Take due rows and lease them; rows locked by another worker are skipped (PostgreSQL)."""
    rows = (
        conn.execute(
            select(mail_outbox)
            .where(mail_outbox.c.status == "pending", mail_outbox.c.next_attempt_at <= now)
            .order_by(mail_outbox.c.next_attempt_at, mail_outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .mappings()
        .all()
    )
    if rows:
        conn.execute(
            update(mail_outbox)
            .where(mail_outbox.c.id.in_([r["id"] for r in rows]))
            .values(next_attempt_at=now + LEASE)
        )
    return [OutgoingMail(r["id"], r["message_id"], r["recipient"], r["message"], r["attempts"]) for r in rows]


def mark_sent(conn: Connection, mail_id: int, now: datetime) -> None:
    conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id).values(status="sent", sent_at=now))


def mark_failed(
    conn: Connection, mail: OutgoingMail, error: str, retry_at: datetime, max_attempts: int
) -> None:
    """Schedule a retry at ``retry_at``; after ``max_attempts`` the row stays ``failed``, for an operator."""
    attempts = mail.attempts + 1
    conn.execute(
        update(mail_outbox)
        .where(mail_outbox.c.id == mail.id)
        .values(
            attempts=attempts,
            last_error=error[:2000],
            status="failed" if attempts >= max_attempts else "pending",
            next_attempt_at=retry_at,
        )
    )


def depth(conn: Connection) -> int:
    """Mails not yet sent (pending, including those waiting for a retry)."""
    return int(conn.execute(select(func.count()).where(mail_outbox.c.status == "pending")).scalar_one())
