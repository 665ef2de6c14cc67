"""Key store operations: accounts, API keys and their signing secrets.

Keys are returned once, at creation; the store keeps their SHA-256 (and the
signing secret encrypted, because webhooks must be signed with it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, insert, inspect, or_, select, update

import rules
from partner_endpoint.email_address import owner_address
from partner_endpoint.networks import Network, parse_networks
from partner_endpoint.secretbox import SecretBox
from partner_endpoint.store import key_changes
from partner_endpoint.store.models import accounts, api_keys, signing_secrets


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


def create_key(conn: Connection, box: SecretBox, account_id: int, label: str, now: datetime) -> NewKey:
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


def list_keys(conn: Connection, account_id: int) -> list[KeyRecord]:
    rows = conn.execute(
        select(api_keys).where(api_keys.c.account_id == account_id).order_by(api_keys.c.id)
    ).mappings()
    return [
        KeyRecord(
            r["id"],
            r["account_id"],
            r["label"],
            r["key_suffix"],
            r["status"],
            r["created_at"],
            r["last_used_at"],
        )
        for r in rows
    ]


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
