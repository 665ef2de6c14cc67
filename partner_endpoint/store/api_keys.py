"""API keys in the store: their hashes, labels, status and history, and the encrypted signing secrets.

A key's value is never stored, only its SHA-256 (and its last four characters, to name it); the
signing secret is stored encrypted, because webhooks must be signed with it. Minting and
encrypting are :mod:`partner_endpoint.services.keys`'s; this module reads and writes rows.
Every revocation and deletion is logged in the key change log in its own transaction, so every
serving process follows it within a second.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, Connection, Engine, func, insert, inspect, or_, select, update

from partner_endpoint.domain.networks import Network, parse_networks
from partner_endpoint.store import key_changes
from partner_endpoint.store.db import NotFound, inserted_id
from partner_endpoint.store.models import accounts, api_keys, leak_events, signing_secrets

StatusFilter = Literal["all", "active", "leaked", "revoked"]
KeyOrder = Literal["newest", "label"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: int
    account_id: int
    label: str
    key_suffix: str
    status: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None = None
    rotated_from: int | None = None


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[KeyRecord]
    total: int
    """Keys matching the filter, on every page."""


@dataclass(frozen=True, slots=True)
class AuthRecord:
    """What authentication needs about a presented key, in one query."""

    key_id: int
    account_id: int
    label: str
    status: str
    last_used_at: datetime | None
    allowlist: tuple[Network, ...]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What the store keeps of a freshly minted pair."""

    key_hash: str
    key_suffix: str
    secret_hash: str
    secret_encrypted: str


def create(
    conn: Connection,
    account_id: int,
    label: str,
    stored: StoredKey,
    now: datetime,
    *,
    rotated_from: int | None = None,
    request: str | None = None,
) -> int:
    """A new active key; ``request`` names the form that asked, unique (see :func:`created_by`)."""
    result = conn.execute(
        insert(api_keys).values(
            account_id=account_id,
            label=label,
            key_hash=stored.key_hash,
            key_suffix=stored.key_suffix,
            status="active",
            created_at=now,
            rotated_from=rotated_from,
            create_request=request,
        )
    )
    key_id = inserted_id(result)
    conn.execute(
        insert(signing_secrets).values(
            key_id=key_id, secret_hash=stored.secret_hash, secret_encrypted=stored.secret_encrypted
        )
    )
    return key_id


def created_by(conn: Connection, request: str) -> int | None:
    """The key a form (``request`` as given to :func:`create_key`) created, if it did."""
    return conn.execute(select(api_keys.c.id).where(api_keys.c.create_request == request)).scalar()


_RECORD_COLUMNS = (
    api_keys.c.id,
    api_keys.c.account_id,
    api_keys.c.label,
    api_keys.c.key_suffix,
    api_keys.c.status,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
    api_keys.c.rotated_from,
)
_VISIBLE = api_keys.c.deleted_at.is_(None)
_VISIBLE = api_keys.c.deleted_at.is_(None)


def _record(row: Sequence[object]) -> KeyRecord:
    return KeyRecord(*row)  # type: ignore[arg-type]


def of_account(conn: Connection, account_id: int) -> list[KeyRecord]:
    """An account's keys, oldest first; deleted keys are not listed."""
    rows = conn.execute(
        select(*_RECORD_COLUMNS).where(api_keys.c.account_id == account_id, _VISIBLE).order_by(api_keys.c.id)
    )
    return [_record(r) for r in rows]


_LEAKED = api_keys.c.id.in_(select(leak_events.c.key_id))
"""Reported leaked: any leak event, whatever was done (a flagged key always has one: the flag is set
with the event). Driven from the few leak events, not evaluated for each of an account's keys."""


def page(
    conn: Connection,
    account_id: int,
    *,
    text: str = "",
    status: StatusFilter = "all",
    order: KeyOrder = "newest",
    offset: int = 0,
    limit: int = 50,
) -> KeyPage:
    """One page of an account's keys: ``text`` matches within labels or is a key's last four characters.

    Served by the (account, created) and (account, label) indexes; the filters narrow one account's keys.
    """
    where: list[ColumnElement[bool]] = [api_keys.c.account_id == account_id, _VISIBLE]
    if text:
        where.append(or_(api_keys.c.label.icontains(text, autoescape=True), api_keys.c.key_suffix == text))
    if status == "leaked":
        where.append(_LEAKED)
    elif status in ("active", "revoked"):
        where.append(api_keys.c.status == status)
    total = conn.execute(select(func.count()).select_from(api_keys).where(*where)).scalar_one()
    ordering = (
        (api_keys.c.label, api_keys.c.id)
        if order == "label"
        else (api_keys.c.created_at.desc(), api_keys.c.id.desc())
    )
    query = select(*_RECORD_COLUMNS).where(*where).order_by(*ordering).offset(offset).limit(limit)
    rows = conn.execute(query)
    return KeyPage([_record(r) for r in rows], int(total))


def leaked(conn: Connection, account_id: int, limit: int = 5) -> KeyPage:
    """The account's keys that were reported leaked and are not deleted yet, most recent first."""
    return page(conn, account_id, status="leaked", limit=limit)


def owned(conn: Connection, key_id: int, email: str) -> KeyRecord | None:
    """The key, if it is not deleted and an account of ``email`` (lower case) holds it; else None."""
    row = conn.execute(
        select(*_RECORD_COLUMNS)
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .where(api_keys.c.id == key_id, _VISIBLE, func.lower(accounts.c.owner_email) == email)
    ).first()
    return None if row is None else _record(row)


def replacements(conn: Connection, key_id: int) -> list[KeyRecord]:
    """Keys created by rotating this one that are not deleted, newest first."""
    rows = conn.execute(
        select(*_RECORD_COLUMNS)
        .where(api_keys.c.rotated_from == key_id, _VISIBLE)
        .order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())
    )
    return [_record(r) for r in rows]


def account_of(conn: Connection, key_id: int) -> int:
    """The account holding a key (deleted or not); NotFound if there is no such key."""
    account_id = conn.execute(select(api_keys.c.account_id).where(api_keys.c.id == key_id)).scalar()
    if account_id is None:
        raise NotFound(f"no key {key_id}")
    return int(account_id)


@dataclass(frozen=True, slots=True)
class KeyName:
    """How a page names a key, deleted or not."""

    label: str
    key_suffix: str
    deleted: bool


def names(conn: Connection, account_id: int, key_ids: Sequence[int]) -> dict[int, KeyName]:
    """The account's keys among ``key_ids`` (a page's worth), deleted ones too."""
    if not key_ids:
        return {}
    rows = conn.execute(
        select(api_keys.c.id, api_keys.c.label, api_keys.c.key_suffix, api_keys.c.deleted_at).where(
            api_keys.c.account_id == account_id, api_keys.c.id.in_(sorted(set(key_ids)))
        )
    )
    return {int(i): KeyName(label, suffix, deleted is not None) for i, label, suffix, deleted in rows}


def visible(conn: Connection, key_id: int) -> KeyRecord | None:
    row = conn.execute(select(*_RECORD_COLUMNS).where(api_keys.c.id == key_id, _VISIBLE)).first()
    return None if row is None else _record(row)


def revoke(conn: Connection, key_id: int, now: datetime) -> bool:
    """Revoke a key (and with it its signing secret); False if it was already revoked.

    Logged in the same transaction, so every serving process refuses the key within 1 s of the commit.
    """
    if conn.execute(select(api_keys.c.id).where(api_keys.c.id == key_id)).first() is None:
        raise NotFound(f"no key {key_id}")
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.status != "revoked")
        .values(status="revoked", revoked_at=now)
    )
    if result.rowcount == 1:
        key_changes.record(conn, now, key_ids=[key_id])
    return result.rowcount == 1


def delete(conn: Connection, key_id: int, now: datetime) -> bool:
    """Revoke the key and hide it from its owner; its leak events stay. False if it was already deleted."""
    revoke(conn, key_id, now)
    result = conn.execute(update(api_keys).where(api_keys.c.id == key_id, _VISIBLE).values(deleted_at=now))
    return result.rowcount == 1


def stored_secret_samples(engine: Engine) -> list[str]:
    """The oldest and the newest stored ciphertexts, to check the encryption key at start-up; none
    before the schema exists. Two, not all: start-up must stay quick with a million keys, and a
    rotation that dropped a key still in use shows in the oldest secret."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(signing_secrets.name):
            return []
        column = signing_secrets.c.secret_encrypted
        oldest = conn.execute(select(column).order_by(signing_secrets.c.key_id).limit(1)).scalar()
        newest = conn.execute(select(column).order_by(signing_secrets.c.key_id.desc()).limit(1)).scalar()
    return [c for c in dict.fromkeys((oldest, newest)) if c is not None]


def find_for_auth(conn: Connection, key_hash: str) -> AuthRecord | None:
    row = (
        conn.execute(
            select(
                api_keys.c.id,
                api_keys.c.account_id,
                api_keys.c.label,
                api_keys.c.status,
                api_keys.c.last_used_at,
                accounts.c.ip_allowlist,
            )
            .join(accounts, accounts.c.id == api_keys.c.account_id)
            .where(api_keys.c.key_hash == key_hash)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return AuthRecord(
        row["id"],
        row["account_id"],
        row["label"],
        row["status"],
        row["last_used_at"],
        parse_networks(json.loads(row["ip_allowlist"])),
    )
