"""Recording a verified alert batch: leak events, the leak policy and the mail outbox, in one transaction.

Idempotent at the database level, so GitHub's retries and replays revoke
nothing twice and mail nobody twice (they only move the sighting's
``last_seen``): a leak event is unique per (token, location), the policy is a
conditional UPDATE that only the first delivery wins, and the outbox row is
unique per (key, leak event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, or_, select, update

from partner_endpoint.alerts import Alert
from partner_endpoint.mail import outbox
from partner_endpoint.mail.render import LeakNotice
from partner_endpoint.settings import LeakPolicy
from partner_endpoint.store.db import read_transaction, upsert, write_transaction
from partner_endpoint.store.models import accounts, api_keys, leak_events, signing_secrets

_CHUNK = 500
_NEW_STATUS = {"revoke": "revoked", "flag": "flagged"}


@dataclass(frozen=True, slots=True)
class _IssuedKey:
    key_id: int
    status: str
    label: str
    key_suffix: str
    owner_email: str


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    issued: frozenset[str]
    """Hashes of reported tokens that we issued (true positives)."""
    actions: tuple[tuple[str, int, str], ...]
    """(token_hash, key_id, action) per true-positive report, for logs."""
    mails_queued: int


def record_alerts(
    engine: Engine,
    alerts: Sequence[Alert],
    *,
    policy: LeakPolicy,
    now: datetime,
    sender: str,
    docs_url: str,
) -> BatchOutcome:
    """Record a batch in one transaction; batches that name no issued credential write nothing.

    Most reports are false positives, so a plain read comes first: it takes no
    lock, and SQLite's single write lock is only taken when there is work to do.
    """
    hashes = sorted({a.token_hash for a in alerts if a.is_credential})
    if not hashes:
        return BatchOutcome(frozenset(), (), 0)
    with read_transaction(engine) as conn:
        if not _lookup(conn, hashes, lock=False):
            return BatchOutcome(frozenset(), (), 0)
    with write_transaction(engine) as conn:
        return record_batch(conn, alerts, policy=policy, now=now, sender=sender, docs_url=docs_url)


def record_batch(
    conn: Connection,
    alerts: Sequence[Alert],
    *,
    policy: LeakPolicy,
    now: datetime,
    sender: str,
    docs_url: str,
) -> BatchOutcome:
    hashes = sorted({a.token_hash for a in alerts if a.is_credential})
    issued = _lookup(conn, hashes)
    if not issued:
        return BatchOutcome(frozenset(), (), 0)
    changed = _apply_policy(conn, sorted({k.key_id for k in issued.values()}), policy, now)
    new_status = _NEW_STATUS[policy]
    notified: set[int] = set()
    actions: list[tuple[str, int, str]] = []
    for alert in alerts:
        key = issued.get(alert.token_hash)
        if key is None:
            continue
        notify = key.key_id in changed and key.key_id not in notified
        status_now = new_status if key.key_id in changed else key.status
        action = new_status if notify else f"already_{status_now}"
        event_id = _record_event(conn, key.key_id, alert, action, now, set_action=notify)
        if notify:
            notified.add(key.key_id)
            notice = LeakNotice(
                recipient=key.owner_email,
                key_id=key.key_id,
                label=key.label,
                key_suffix=key.key_suffix,
                url=alert.url,
                source=alert.source,
                action=action,
                seen_at=now,
                leak_event_id=event_id,
            )
            outbox.enqueue(conn, notice, sender=sender, docs_url=docs_url, now=now)
        actions.append((alert.token_hash, key.key_id, action))
    return BatchOutcome(frozenset(issued), tuple(actions), len(notified))


# Built once: constructing the statement costs as much as running it for a small batch.
_HASHES = bindparam("hashes", expanding=True)
_LOOKUP = (
    select(
        api_keys.c.id,
        api_keys.c.status,
        api_keys.c.label,
        api_keys.c.key_suffix,
        api_keys.c.key_hash,
        signing_secrets.c.secret_hash,
        accounts.c.owner_email,
    )
    .join(signing_secrets, signing_secrets.c.key_id == api_keys.c.id)
    .join(accounts, accounts.c.id == api_keys.c.account_id)
    .where(or_(api_keys.c.key_hash.in_(_HASHES), signing_secrets.c.secret_hash.in_(_HASHES)))
    .order_by(api_keys.c.id)
)
_LOCK_KEYS = (
    select(api_keys.c.id)
    .where(api_keys.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(api_keys.c.id)
    .with_for_update()
)


def _lookup(conn: Connection, hashes: Sequence[str], *, lock: bool = True) -> dict[str, _IssuedKey]:
    """Token hash -> issued key, for API keys and signing secrets alike.

    ``lock`` takes the keys' row locks (PostgreSQL) in ascending id order across the whole batch,
    then reads the keys again as locked. Locking while looking up, chunk by chunk of hashes, gave
    each batch its own order, and two overlapping batches of over 500 tokens could deadlock.
    """
    found = _read_keys(conn, hashes)
    if lock and found and conn.dialect.name == "postgresql":
        ids = sorted({key.key_id for key in found.values()})
        for start in range(0, len(ids), _CHUNK):
            conn.execute(_LOCK_KEYS, {"ids": ids[start : start + _CHUNK]})
        found = _read_keys(conn, hashes)
    return found


def _read_keys(conn: Connection, hashes: Sequence[str]) -> dict[str, _IssuedKey]:
    found: dict[str, _IssuedKey] = {}
    for start in range(0, len(hashes), _CHUNK):
        chunk = hashes[start : start + _CHUNK]
        rows = conn.execute(_LOOKUP, {"hashes": chunk}).mappings()
        wanted = set(chunk)
        for row in rows:
            key = _IssuedKey(row["id"], row["status"], row["label"], row["key_suffix"], row["owner_email"])
            for token_hash in (row["key_hash"], row["secret_hash"]):
                if token_hash in wanted:
                    found[token_hash] = key
    return found


def _apply_policy(conn: Connection, key_ids: list[int], policy: LeakPolicy, now: datetime) -> set[int]:
    """The keys this batch changed. Conditional, so a concurrent or repeated delivery changes nothing."""
    if policy == "revoke":
        stmt = (
            update(api_keys)
            .where(api_keys.c.id.in_(key_ids), api_keys.c.status != "revoked")
            .values(status="revoked", revoked_at=now)
        )
    else:
        stmt = (
            update(api_keys)
            .where(api_keys.c.id.in_(key_ids), api_keys.c.status == "active")
            .values(status="flagged")
        )
    return {row[0] for row in conn.execute(stmt.returning(api_keys.c.id))}


def _record_event(
    conn: Connection, key_id: int, alert: Alert, action: str, now: datetime, *, set_action: bool
) -> int:
    stmt = upsert(conn, leak_events).values(
        key_id=key_id,
        token_hash=alert.token_hash,
        token_type=alert.type[:100],
        url=alert.url,
        source=alert.source[:100],
        location_hash=alert.location_hash,
        first_seen=now,
        last_seen=now,
        action=action,
    )
    changes = {"last_seen": stmt.excluded.last_seen}
    if set_action:
        changes["action"] = stmt.excluded.action
    stmt = stmt.on_conflict_do_update(index_elements=["token_hash", "location_hash"], set_=changes)
    return int(conn.execute(stmt.returning(leak_events.c.id)).scalar_one())


def list_leaks(conn: Connection, limit: int = 1000) -> list[dict[str, object]]:
    rows = conn.execute(select(leak_events).order_by(leak_events.c.id.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]
