"""The response to a leak report, whatever its origin: record, apply the policy, queue the owner's mail.

All three happen in one transaction, so a crash leaves either all of them or
none, and a redelivered report finds the work done and queues nothing twice.
The mail is queued as data; the mail worker renders it, outside this transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine

from partner_endpoint.mail.leak_notice import LeakNotice
from partner_endpoint.mail.queue import queue
from partner_endpoint.settings import LeakPolicy
from partner_endpoint.store.db import read_transaction, write_transaction
from partner_endpoint.store.leaks import NOTHING, BatchOutcome, Sighting, any_issued, record_batch


def respond(
    engine: Engine,
    sightings: Sequence[Sighting],
    *,
    policy: LeakPolicy,
    now: datetime,
    sender: str,
) -> BatchOutcome:
    """Record a batch in one transaction; batches that name no issued credential write nothing.

    Most reports are false positives, so a plain read comes first: it takes no
    lock, and SQLite's single write lock is only taken when there is work to do.
    """
    if not sightings:
        return NOTHING
    with read_transaction(engine) as conn:
        if not any_issued(conn, [s.token_hash for s in sightings]):
            return NOTHING
    with write_transaction(engine) as conn:
        return record_and_notify(conn, sightings, policy=policy, now=now, sender=sender)


def record_and_notify(
    conn: Connection,
    sightings: Sequence[Sighting],
    *,
    policy: LeakPolicy,
    now: datetime,
    sender: str,
) -> BatchOutcome:
    """Within the caller's (write) transaction: record, apply the policy, queue one mail per changed key."""
    outcome = record_batch(conn, sightings, policy=policy, now=now)
    notices = [
        LeakNotice(
            recipient=leak.owner_email,
            key_id=leak.key_id,
            label=leak.label,
            key_suffix=leak.key_suffix,
            url=leak.url,
            source=leak.source,
            action=leak.action,
            seen_at=now,
            leak_event_id=leak.leak_event_id,
        )
        for leak in outcome.leaks
    ]
    queue(conn, [notice.letter() for notice in notices], sender=sender, now=now)
    return outcome
