"""The mail outbox table: written in the transaction that decided to send, drained by the mail worker.

Rows hold a kind of mail and its data; what a message says is the mail package's business, not the store's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, update

from partner_endpoint.store.db import chunks, one_of, upsert
from partner_endpoint.store.models import mail_outbox

CLAIM_LIMIT = 10
LEASE = timedelta(minutes=10)
"""How long a claimed row is hidden from other workers; a crashed worker's rows come back after it.
Longer than a whole claim at the SMTP timeout (10 x 30 s), so a slow server does not cause double sends."""


@dataclass(frozen=True, slots=True)
class NewMail:
    """A mail to queue: a kind and its data (``payload``, JSON text, encrypted for secret kinds).

    ``dedupe_key`` is its identity: queuing it twice sends it once, under one Message-ID.
    """

    kind: str
    recipient: str
    dedupe_key: str
    payload: str
    key_id: int | None = None
    leak_event_id: int | None = None


def message_id(dedupe_key: str, sender: str) -> str:
    """Deterministic, so a duplicate delivery of one mail is recognisable as such."""
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "soundpiece.invalid"
    return f"<{dedupe_key}@{domain}>"


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    id: int
    kind: str
    message_id: str
    recipient: str
    payload: str | None
    message: str | None
    """A finished message (rows queued before revision 0002 hold one instead of a payload)."""
    attempts: int
    key_id: int | None = None


def enqueue(conn: Connection, mails: Sequence[NewMail], *, sender: str, now: datetime) -> None:
    """Queue mails in the caller's transaction, in one statement; a ``dedupe_key`` already queued is
    skipped. ``sender`` names the Message-ID's domain."""
    if not mails:
        return
    stmt = upsert(conn, mail_outbox).on_conflict_do_nothing(index_elements=["dedupe_key"])
    conn.execute(
        stmt,
        [
            {
                "kind": m.kind,
                "dedupe_key": m.dedupe_key,
                "message_id": message_id(m.dedupe_key, sender),
                "recipient": m.recipient,
                "payload": m.payload,
                "message": None,
                "key_id": m.key_id,
                "leak_event_id": m.leak_event_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "created_at": now,
                "sent_at": None,
            }
            for m in mails
        ],
    )


def queued(conn: Connection, dedupe_keys: Sequence[str]) -> set[str]:
    """Which of these identities are in the outbox already (sent or not): one query per chunk."""
    dialect = conn.dialect.name
    query = select(mail_outbox.c.dedupe_key).where(one_of(mail_outbox.c.dedupe_key, "keys", dialect))
    return {
        str(k)
        for chunk in chunks(list(dedupe_keys), dialect)
        for (k,) in conn.execute(query, {"keys": chunk})
    }


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
    return [
        OutgoingMail(
            r["id"],
            r["kind"],
            r["message_id"],
            r["recipient"],
            r["payload"],
            r["message"],
            r["attempts"],
            r["key_id"],
        )
        for r in rows
    ]


def mark_sent(conn: Connection, mail_id: int, now: datetime, *, erase_payload: bool = False) -> None:
    """Record delivery; ``erase_payload`` drops data that must not outlive its delivery (a sign-in link)."""
    values: dict[str, object] = {"status": "sent", "sent_at": now}
    if erase_payload:
        values["payload"] = None
    conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id).values(**values))


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
