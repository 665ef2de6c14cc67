"""Recording sightings of leaked tokens: leak events and the leak policy, in the caller's transaction.

Idempotent at the database level, so retries and replays revoke nothing
twice (they only move the sighting's ``last_seen``): a leak event is unique
per (token, location) and the policy is a conditional UPDATE that only the
first delivery wins. What the batch changed comes back as :class:`KeyLeak`
values, so the caller can notify owners in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Insert,
    Select,
    Update,
    bindparam,
    case,
    func,
    select,
    union_all,
    update,
)

from partner_endpoint.domain.origins import GITHUB
from partner_endpoint.settings import LeakPolicy
from partner_endpoint.store import key_changes
from partner_endpoint.store.db import chunks, insert_many, one_of, rows_of
from partner_endpoint.store.models import accounts, api_keys, leak_events, signing_secrets

_NEW_STATUS = {"revoke": "revoked", "flag": "flagged"}


@dataclass(frozen=True, slots=True)
class _IssuedKey:
    key_id: int
    account_id: int
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
    origin: str = GITHUB.name
    """The platform that reported it (:mod:`partner_endpoint.domain.origins`)."""


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
    seen_at: datetime
    origin: str = GITHUB.name
    """The platform that reported it (letters queued before origins were GitHub's)."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    issued: frozenset[str]
    """Hashes of reported tokens that we issued (true positives)."""
    actions: tuple[tuple[str, int, str], ...]
    """(token_hash, key_id, action) per true-positive report, for logs."""
    leaks: tuple[KeyLeak, ...]
    """One per key this batch changed: the owners to notify."""
    new_sightings: tuple[NewSighting, ...] = ()
    """Places where an issued key was seen for the first time (for the account's activity log)."""


@dataclass(frozen=True, slots=True)
class NewSighting:
    account_id: int
    key_id: int
    url: str
    source: str
    origin: str


NOTHING = BatchOutcome(frozenset(), (), ())


def any_issued(conn: Connection, token_hashes: Sequence[str]) -> bool:
    """Whether any of these hashes names a key or signing secret we issued; takes no lock."""
    dialect = conn.dialect.name
    return any(_read_keys(conn, chunk) for chunk in chunks(sorted(set(token_hashes)), dialect))


def record_batch(
    conn: Connection, sightings: Sequence[Sighting], *, policy: LeakPolicy, now: datetime
) -> BatchOutcome:
    """Record every sighting of an issued token and apply ``policy`` to its key; the rest are ignored.

    A handful of statements per batch (per 500 sightings on SQLite), however large: a batch of
    10,000 keys must be answered well within GitHub's 30 s.
    """
    issued = _lookup(conn, sorted({s.token_hash for s in sightings}))
    if not issued:
        return NOTHING
    changed = _apply_policy(conn, sorted({k.key_id for k in issued.values()}), policy, now)
    new_status = _NEW_STATUS[policy]
    notified: dict[int, Sighting] = {}
    actions: list[tuple[str, int, str]] = []
    events: dict[tuple[str, str], dict[str, object]] = {}
    for sighting in sightings:
        key = issued.get(sighting.token_hash)
        if key is None:
            continue
        notify = key.key_id in changed and key.key_id not in notified
        action = new_status if notify else f"already_{new_status if key.key_id in changed else key.status}"
        if notify:
            notified[key.key_id] = sighting
        actions.append((sighting.token_hash, key.key_id, action))
        # A location reported twice in one batch is one event; its first report is the one that counts
        # (a key's notifying report is its first, so it is never dropped here).
        events.setdefault(
            (sighting.token_hash, sighting.location_hash), _event_row(key.key_id, sighting, action, now)
        )
    known = _known_places(conn, sorted({token for token, _location in events}))
    event_ids = _record_events(conn, list(events.values()))
    new_sightings = tuple(
        NewSighting(
            issued[token].account_id,
            issued[token].key_id,
            str(row["url"]),
            str(row["source"]),
            str(row["origin"]),
        )
        for (token, location), row in events.items()
        if (token, location) not in known
    )
    leaks = tuple(
        KeyLeak(
            key_id=key_id,
            owner_email=issued[sighting.token_hash].owner_email,
            label=issued[sighting.token_hash].label,
            key_suffix=issued[sighting.token_hash].key_suffix,
            url=sighting.url,
            source=sighting.source,
            action=new_status,
            leak_event_id=event_ids[sighting.token_hash, sighting.location_hash],
            seen_at=now,
            origin=sighting.origin,
        )
        for key_id, sighting in notified.items()
    )
    return BatchOutcome(frozenset(issued), tuple(actions), leaks, new_sightings)


_KEYS = (
    select(
        api_keys.c.id,
        api_keys.c.account_id,
        api_keys.c.status,
        api_keys.c.label,
        api_keys.c.key_suffix,
        api_keys.c.key_hash,
        signing_secrets.c.secret_hash,
        accounts.c.owner_email,
    )
    .join(signing_secrets, signing_secrets.c.key_id == api_keys.c.id)
    .join(accounts, accounts.c.id == api_keys.c.account_id)
)


@cache
def _statements(dialect: str) -> _Statements:
    """Built once per dialect: building a statement costs more than running it for a small batch."""
    upsert = insert_many(dialect, leak_events, _EVENT_COLUMNS)
    action = case(  # a new action only from the delivery that changed the key, not "already_…"
        (upsert.excluded.action.startswith("already_", autoescape=True), leak_events.c.action),
        else_=upsert.excluded.action,
    )
    return _Statements(
        # Two indexed lookups rather than one ``key_hash IN … OR secret_hash IN …``: an OR across
        # the joined tables made PostgreSQL scan the join.
        lookup=union_all(
            _KEYS.where(one_of(api_keys.c.key_hash, "hashes", dialect)),
            _KEYS.where(one_of(signing_secrets.c.secret_hash, "hashes", dialect)),
        ),
        lock=select(api_keys.c.id, api_keys.c.status)
        .where(one_of(api_keys.c.id, "ids", dialect))
        .order_by(api_keys.c.id)
        .with_for_update(),
        revoke=update(api_keys)
        .where(one_of(api_keys.c.id, "ids", dialect), api_keys.c.status != "revoked")
        .values(status="revoked", revoked_at=bindparam("now"))
        .returning(api_keys.c.id),
        flag=update(api_keys)
        .where(one_of(api_keys.c.id, "ids", dialect), api_keys.c.status == "active")
        .values(status="flagged")
        .returning(api_keys.c.id),
        record=upsert.on_conflict_do_update(
            index_elements=["token_hash", "location_hash"],
            set_={"last_seen": upsert.excluded.last_seen, "action": action},
        ).returning(leak_events.c.id, leak_events.c.token_hash, leak_events.c.location_hash),
    )


@dataclass(frozen=True, slots=True)
class _Statements:
    lookup: CompoundSelect[Any]
    lock: Select[tuple[int, str]]
    revoke: Update
    flag: Update
    record: Insert


_EVENT_COLUMNS = (
    "key_id",
    "token_hash",
    "token_type",
    "url",
    "source",
    "location_hash",
    "first_seen",
    "last_seen",
    "action",
    "origin",
)


def _lookup(conn: Connection, hashes: Sequence[str], *, lock: bool = True) -> dict[str, _IssuedKey]:
    """Token hash -> issued key, for API keys and signing secrets alike.

    ``lock`` takes the keys' row locks (PostgreSQL) in ascending id order across the whole batch,
    and takes their status as locked. Locking while looking up, chunk by chunk of hashes, gave
    each batch its own order, and two overlapping batches of over 500 tokens could deadlock.
    """
    dialect = conn.dialect.name
    found = {h: key for chunk in chunks(hashes, dialect) for h, key in _read_keys(conn, chunk).items()}
    if lock and found and dialect == "postgresql":
        ids = sorted({key.key_id for key in found.values()})
        status: dict[int, str] = {}
        for chunk in chunks(ids, dialect):
            status.update(
                (row.id, row.status) for row in conn.execute(_statements(dialect).lock, {"ids": chunk})
            )
        found = {h: replace(key, status=status[key.key_id]) for h, key in found.items()}
    return found


def _read_keys(conn: Connection, hashes: list[str]) -> dict[str, _IssuedKey]:
    """One chunk (see :func:`chunks`) of hashes."""
    found: dict[str, _IssuedKey] = {}
    wanted = set(hashes)
    for row in conn.execute(_statements(conn.dialect.name).lookup, {"hashes": hashes}).mappings():
        key = _IssuedKey(
            row["id"], row["account_id"], row["status"], row["label"], row["key_suffix"], row["owner_email"]
        )
        for token_hash in (row["key_hash"], row["secret_hash"]):
            if token_hash in wanted:
                found[token_hash] = key
    return found


def _apply_policy(conn: Connection, key_ids: list[int], policy: LeakPolicy, now: datetime) -> set[int]:
    """The keys this batch changed. Conditional, so a concurrent or repeated delivery changes nothing."""
    statements = _statements(conn.dialect.name)
    stmt = statements.revoke if policy == "revoke" else statements.flag
    changed: set[int] = set()
    for chunk in chunks(key_ids, conn.dialect.name):
        changed.update(row[0] for row in conn.execute(stmt, {"ids": chunk, "now": now}))
    key_changes.record(conn, now, key_ids=changed)  # so every serving process sees it within 1 s
    return changed


def _event_row(key_id: int, sighting: Sighting, action: str, now: datetime) -> dict[str, object]:
    return {
        "key_id": key_id,
        "token_hash": sighting.token_hash,
        "token_type": _storable(sighting.token_type[:100]),
        "url": _storable(sighting.url),
        "source": _storable(sighting.source[:100]),
        "location_hash": sighting.location_hash,
        "first_seen": now,
        "last_seen": now,
        "action": action,
        "origin": sighting.origin,
    }


def _storable(text: str) -> str:
    """PostgreSQL's text cannot hold NUL: it becomes U+FFFD (on every backend, so both store the same)."""
    return text.replace("\0", "\ufffd")


def _known_places(conn: Connection, token_hashes: Sequence[str]) -> set[tuple[str, str]]:
    """The (token, location) pairs already recorded for these tokens: a redelivery is no new sighting."""
    dialect = conn.dialect.name
    query = select(leak_events.c.token_hash, leak_events.c.location_hash).where(
        one_of(leak_events.c.token_hash, "hashes", dialect)
    )
    return {
        (str(token), str(location))
        for chunk in chunks(token_hashes, dialect)
        for token, location in conn.execute(query, {"hashes": chunk})
    }


def _record_events(conn: Connection, events: list[dict[str, object]]) -> dict[tuple[str, str], int]:
    """Insert new sightings and move known ones' ``last_seen``; (token, location) -> event id.

    ``events`` holds each (token, location) once: PostgreSQL refuses to update a row twice in one statement.
    """
    if not events:
        return {}
    dialect = conn.dialect.name
    rows = conn.execute(_statements(dialect).record, rows_of(dialect, events, _EVENT_COLUMNS))
    return {(row.token_hash, row.location_hash): row.id for row in rows}


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
    origin: str


SIGHTINGS_READ = 200
"""A key's sightings a page reads at most (a key seen in more places is rare)."""


def sightings_of(conn: Connection, key_id: int, limit: int = SIGHTINGS_READ) -> list[SightingRecord]:
    """A key's leak events, most recently seen first, ``limit`` at most."""
    rows = conn.execute(
        select(
            leak_events.c.token_type,
            leak_events.c.url,
            leak_events.c.source,
            leak_events.c.first_seen,
            leak_events.c.last_seen,
            leak_events.c.action,
            leak_events.c.origin,
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


@dataclass(frozen=True, slots=True)
class FirstReport:
    """The first report of a leaked key, and whom it belongs to (for the follow-up mail)."""

    key_id: int
    leak_event_id: int
    first_seen: datetime
    url: str
    source: str
    action: str
    account_id: int
    owner_email: str
    label: str
    key_suffix: str


def first_reports(conn: Connection, key_ids: Sequence[int]) -> dict[int, FirstReport]:
    """For each of these keys that was reported leaked, its first report (by time, then id).

    Leaked keys are few, and a key's sightings are few: their rows are read and the first kept."""
    dialect = conn.dialect.name
    query = (
        select(
            leak_events.c.key_id,
            leak_events.c.id,
            leak_events.c.first_seen,
            leak_events.c.url,
            leak_events.c.source,
            leak_events.c.action,
            api_keys.c.account_id,
            accounts.c.owner_email,
            api_keys.c.label,
            api_keys.c.key_suffix,
        )
        .join(api_keys, api_keys.c.id == leak_events.c.key_id)
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .where(one_of(leak_events.c.key_id, "ids", dialect))
        .order_by(leak_events.c.key_id, leak_events.c.first_seen, leak_events.c.id)
    )
    rows = [row for ids in chunks(sorted(set(key_ids)), dialect) for row in conn.execute(query, {"ids": ids})]
    first: dict[int, FirstReport] = {}
    for key_id, event_id, seen, url, source, action, account_id, email, label, suffix in rows:
        if key_id not in first:
            first[key_id] = FirstReport(
                key_id, event_id, seen, url, source, action, account_id, email, label, suffix
            )
    return first
