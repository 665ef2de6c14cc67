"""Recording sightings of leaked tokens: leak events and the leak policy, in the caller's transaction.

Idempotent at the database level, so retries and replays revoke nothing
twice (they only move the sighting's ``last_seen``): a leak event is unique
per (token, location) and the policy is a conditional UPDATE that only the
first delivery wins. What the batch changed comes back as :class:`KeyLeak`
values, so the caller can notify owners in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, or_, select, update

from partner_endpoint.settings import LeakPolicy
from partner_endpoint.store import key_changes
from partner_endpoint.store.db import upsert
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
class Sighting:
    """One report of a token seen somewhere; the token itself is never stored, only its hash."""

    token_hash: str
    token_type: str
    url: str
    source: str
    location_hash: str
    """Identity of where the token was seen (unique per token with ``token_hash``)."""


@dataclass(frozen=True, slots=True)
class KeyLeak:
    """A key this batch changed by policy: its owner is to be told, once, about this sighting."""

    key_id: int
    owner_email: str
    label: str
    key_suffix: str
    url: str
    source: str
    action: str
    leak_event_id: int


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    issued: frozenset[str]
    """Hashes of reported tokens that we issued (true positives)."""
    actions: tuple[tuple[str, int, str], ...]
    """(token_hash, key_id, action) per true-positive report, for logs."""
    leaks: tuple[KeyLeak, ...]
    """One per key this batch changed: the owners to notify."""


NOTHING = BatchOutcome(frozenset(), (), ())


def any_issued(conn: Connection, token_hashes: Sequence[str]) -> bool:
    """Whether any of these hashes names a key or signing secret we issued; takes no lock."""
    return bool(_lookup(conn, sorted(set(token_hashes)), lock=False))


def record_batch(
    conn: Connection, sightings: Sequence[Sighting], *, policy: LeakPolicy, now: datetime
) -> BatchOutcome:
    """Record every sighting of an issued token and apply ``policy`` to its key; the rest are ignored."""
    issued = _lookup(conn, sorted({s.token_hash for s in sightings}))
    if not issued:
        return NOTHING
    changed = _apply_policy(conn, sorted({k.key_id for k in issued.values()}), policy, now)
    new_status = _NEW_STATUS[policy]
    leaks: dict[int, KeyLeak] = {}
    actions: list[tuple[str, int, str]] = []
    for sighting in sightings:
        key = issued.get(sighting.token_hash)
        if key is None:
            continue
        notify = key.key_id in changed and key.key_id not in leaks
        status_now = new_status if key.key_id in changed else key.status
        action = new_status if notify else f"already_{status_now}"
        event_id = _record_event(conn, key.key_id, sighting, action, now, set_action=notify)
        if notify:
            leaks[key.key_id] = KeyLeak(
                key_id=key.key_id,
                owner_email=key.owner_email,
                label=key.label,
                key_suffix=key.key_suffix,
                url=sighting.url,
                source=sighting.source,
                action=action,
                leak_event_id=event_id,
            )
        actions.append((sighting.token_hash, key.key_id, action))
    return BatchOutcome(frozenset(issued), tuple(actions), tuple(leaks.values()))


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
    changed = {row[0] for row in conn.execute(stmt.returning(api_keys.c.id))}
    key_changes.record(conn, now, key_ids=changed)  # so every serving process sees it within 1 s
    return changed


def _record_event(
    conn: Connection, key_id: int, sighting: Sighting, action: str, now: datetime, *, set_action: bool
) -> int:
    stmt = upsert(conn, leak_events).values(
        key_id=key_id,
        token_hash=sighting.token_hash,
        token_type=sighting.token_type[:100],
        url=sighting.url,
        source=sighting.source[:100],
        location_hash=sighting.location_hash,
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


@dataclass(frozen=True, slots=True)
class SightingRecord:
    """Where a key (or its signing secret) was seen, as its owner is shown it."""

    token_type: str
    url: str
    source: str
    first_seen: datetime
    last_seen: datetime
    action: str


def sightings_of(conn: Connection, key_id: int, limit: int = 200) -> list[SightingRecord]:
    """A key's leak events, most recently seen first (a key seen in more places than ``limit`` is rare)."""
    rows = conn.execute(
        select(
            leak_events.c.token_type,
            leak_events.c.url,
            leak_events.c.source,
            leak_events.c.first_seen,
            leak_events.c.last_seen,
            leak_events.c.action,
        )
        .where(leak_events.c.key_id == key_id)
        .order_by(leak_events.c.last_seen.desc(), leak_events.c.id.desc())
        .limit(limit)
    )
    return [SightingRecord(*row) for row in rows]


def sighting_counts(conn: Connection, key_ids: Sequence[int]) -> dict[int, int]:
    """Leak events per key, for the keys given (one query per page of keys)."""
    if not key_ids:
        return {}
    rows = conn.execute(
        select(leak_events.c.key_id, func.count())
        .where(leak_events.c.key_id.in_(list(key_ids)))
        .group_by(leak_events.c.key_id)
    )
    return {int(key_id): int(count) for key_id, count in rows}
