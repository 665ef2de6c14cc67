"""Key store operations: accounts, API keys and their signing secrets.

Keys are returned once, at creation; the store keeps their SHA-256 (and the
signing secret encrypted, because webhooks must be signed with it).

Every revocation and deletion goes through :func:`revoke_key`, so whatever
must follow one (the auth cache's change log) has one place to hook into.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, insert, inspect, or_, select, update

import rules
from partner_endpoint.domain.networks import Network, parse_network, parse_networks
from partner_endpoint.domain.owner_address import owner_address
from partner_endpoint.store import key_changes
from partner_endpoint.store.models import accounts, api_keys, leak_events, signing_secrets
from partner_endpoint.store.secretbox import SecretBox

StatusFilter = Literal["all", "active", "leaked", "revoked"]
KeyOrder = Literal["newest", "label"]


class NotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class NewKey:
    """What ``keys create`` shows exactly once."""

    key_id: int
    label: str
    api_key: str
    signing_secret: str

    def __repr__(self) -> str:
        return f"NewKey(key_id={self.key_id}, label={self.label!r}, <secrets redacted>)"


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
class Account:
    account_id: int
    owner_email: str
    allowlist: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """An account as the operators' ``accounts list`` shows it."""

    account_id: int
    owner_email: str
    allowlist: tuple[str, ...]
    created_at: datetime
    keys: int
    """Keys not deleted (active, flagged or revoked)."""
    active_keys: int
    """Keys that authenticate (active or flagged)."""


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


def create_account(conn: Connection, email: str, allow_ips: Sequence[str], now: datetime) -> int:
    owner_address(email)  # ValueError
    result = conn.execute(
        insert(accounts).values(owner_email=email, ip_allowlist=_allowlist_json(allow_ips), created_at=now)
    )
    return int(result.inserted_primary_key[0])


def set_allowlist(conn: Connection, account_id: int, allow_ips: Sequence[str], now: datetime) -> None:
    """Replace an account's IP allowlist (empty: any address); every serving process follows within 1 s."""
    result = conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(ip_allowlist=_allowlist_json(allow_ips))
    )
    if result.rowcount != 1:
        raise NotFound(f"no account {account_id}")
    key_changes.record(conn, now, account_id=account_id)


def _allowlist_json(allow_ips: Sequence[str]) -> str:
    return json.dumps([str(n) for n in parse_networks(allow_ips)])


def create_key(
    conn: Connection,
    box: SecretBox,
    account_id: int,
    label: str,
    now: datetime,
    *,
    rotated_from: int | None = None,
    request: str | None = None,
) -> NewKey:
    """Mint a pair. ``rotated_from``: the key it replaces; ``request``: a hash naming the form that
    asked, unique, so a resubmitted form fails instead of minting twice (see :func:`created_by`)."""
    if conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
        raise NotFound(f"no account {account_id}")
    pair = rules.mint_pair()
    result = conn.execute(
        insert(api_keys).values(
            account_id=account_id,
            label=label,
            key_hash=rules.identity(pair.api_key),
            key_suffix=pair.api_key[-4:],
            status="active",
            created_at=now,
            rotated_from=rotated_from,
            create_request=request,
        )
    )
    key_id = int(result.inserted_primary_key[0])
    conn.execute(
        insert(signing_secrets).values(
            key_id=key_id,
            secret_hash=rules.identity(pair.signing_secret),
            secret_encrypted=box.encrypt(pair.signing_secret),
        )
    )
    return NewKey(key_id, label, pair.api_key, pair.signing_secret)


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


def _record(row: Sequence[object]) -> KeyRecord:
    return KeyRecord(*row)  # type: ignore[arg-type]


def list_keys(conn: Connection, account_id: int) -> list[KeyRecord]:
    """An account's keys, oldest first; deleted keys are not listed. NotFound if there is no such account."""
    get_account(conn, account_id)
    rows = conn.execute(
        select(*_RECORD_COLUMNS).where(api_keys.c.account_id == account_id, _VISIBLE).order_by(api_keys.c.id)
    )
    return [_record(r) for r in rows]


_LEAKED = api_keys.c.id.in_(select(leak_events.c.key_id))
"""Reported leaked: any leak event, whatever was done (a flagged key always has one: the flag is set
with the event). Driven from the few leak events, not evaluated for each of an account's keys."""


def key_page(
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


def leaked_keys(conn: Connection, account_id: int, limit: int = 5) -> KeyPage:
    """The account's keys that were reported leaked and are not deleted yet, most recent first."""
    return key_page(conn, account_id, status="leaked", limit=limit)


def owned_key(conn: Connection, key_id: int, email: str) -> KeyRecord | None:
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


def visible_key(conn: Connection, key_id: int) -> KeyRecord | None:
    row = conn.execute(select(*_RECORD_COLUMNS).where(api_keys.c.id == key_id, _VISIBLE)).first()
    return None if row is None else _record(row)


def revoke_key(conn: Connection, key_id: int, now: datetime) -> bool:
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


def delete_key(conn: Connection, key_id: int, now: datetime) -> bool:
    """Revoke the key and hide it from its owner; its leak events stay. False if it was already deleted."""
    revoke_key(conn, key_id, now)
    result = conn.execute(update(api_keys).where(api_keys.c.id == key_id, _VISIBLE).values(deleted_at=now))
    return result.rowcount == 1


# --- accounts ------------------------------------------------------------------------------------


_ACCOUNTS = select(accounts.c.id, accounts.c.owner_email, accounts.c.ip_allowlist)


def _account(row: Sequence[object]) -> Account:
    account_id, email, allowlist = row
    return Account(int(account_id), str(email), tuple(json.loads(str(allowlist))))  # type: ignore[call-overload]


def list_accounts(conn: Connection) -> list[AccountSummary]:
    """Every account, oldest first, with counts of its keys (one query)."""
    visible = and_(api_keys.c.account_id == accounts.c.id, _VISIBLE)
    rows = conn.execute(
        select(
            accounts.c.id,
            accounts.c.owner_email,
            accounts.c.ip_allowlist,
            accounts.c.created_at,
            func.count(api_keys.c.id),
            func.count(api_keys.c.id).filter(api_keys.c.status != "revoked"),
        )
        .select_from(accounts.outerjoin(api_keys, visible))
        .group_by(accounts.c.id)
        .order_by(accounts.c.id)
    )
    return [
        AccountSummary(int(i), str(email), tuple(json.loads(str(allowlist))), created, int(total), int(live))
        for i, email, allowlist, created, total, live in rows
    ]


def accounts_of(conn: Connection, email: str) -> list[Account]:
    """The accounts whose owner address is ``email`` (compared in lower case), oldest first."""
    rows = conn.execute(
        _ACCOUNTS.where(func.lower(accounts.c.owner_email) == email.lower()).order_by(accounts.c.id)
    )
    return [_account(r) for r in rows]


def get_account(conn: Connection, account_id: int) -> Account:
    row = conn.execute(_ACCOUNTS.where(accounts.c.id == account_id)).first()
    if row is None:
        raise NotFound(f"no account {account_id}")
    return _account(row)


def allow_ip(conn: Connection, account_id: int, values: Sequence[str], now: datetime) -> tuple[str, ...]:
    """Add addresses or ranges to the account's allowlist; returns the new allowlist.

    Strict: a range with bits set after its prefix (``203.0.113.5/2``) is refused as a typo.
    """
    added = [str(parse_network(v)) for v in values]
    current = list(get_account(conn, account_id).allowlist)
    updated = current + [n for n in dict.fromkeys(added) if n not in current]
    set_allowlist(conn, account_id, updated, now)
    return tuple(updated)


def disallow_ip(conn: Connection, account_id: int, values: Sequence[str], now: datetime) -> tuple[str, ...]:
    """Remove addresses or ranges (exactly as listed) from the allowlist; returns the new allowlist.

    An empty allowlist allows every address, so removing the last entry opens the account: the
    caller (the CLI) says so.
    """
    removed = {str(parse_network(v)) for v in values}
    current = list(get_account(conn, account_id).allowlist)
    missing = sorted(removed - set(current))
    if missing:
        raise ValueError(f"not in account {account_id}'s allowlist: {', '.join(missing)}")
    updated = [n for n in current if n not in removed]
    set_allowlist(conn, account_id, updated, now)
    return tuple(updated)


def signing_secret(conn: Connection, box: SecretBox, key_id: int) -> str:
    """The clear signing secret, for signing webhooks; never for display or logs."""
    row = conn.execute(
        select(signing_secrets.c.secret_encrypted).where(signing_secrets.c.key_id == key_id)
    ).first()
    if row is None:
        raise NotFound(f"no key {key_id}")
    return box.decrypt(row[0])


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


def touch_last_used(conn: Connection, key_id: int, now: datetime, interval: timedelta) -> bool:
    """Record use at most once per ``interval``, even with many processes racing."""
    result = conn.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            or_(api_keys.c.last_used_at.is_(None), and_(api_keys.c.last_used_at < now - interval)),
        )
        .values(last_used_at=now)
    )
    return result.rowcount == 1
