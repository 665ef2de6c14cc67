"""Accounts in the store: their owner address and IP allowlist.

Rules (what an owner address or a network may be, how an allowlist changes) are the services'
and :mod:`partner_endpoint.domain`'s; this module reads and writes rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, func, insert, select, update

from partner_endpoint.store import key_changes
from partner_endpoint.store.db import NotFound, inserted_id
from partner_endpoint.store.models import accounts, api_keys


@dataclass(frozen=True, slots=True)
class Account:
    account_id: int
    owner_email: str
    allowlist: tuple[str, ...]
    """Networks as text (``203.0.113.0/24``); empty: any address."""


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


def create(conn: Connection, email: str, allowlist: Sequence[str], now: datetime) -> int:
    result = conn.execute(
        insert(accounts).values(owner_email=email, ip_allowlist=json.dumps(list(allowlist)), created_at=now)
    )
    return inserted_id(result)


def set_allowlist(conn: Connection, account_id: int, allowlist: Sequence[str], now: datetime) -> None:
    """Replace an account's IP allowlist; logged, so every serving process follows within a second."""
    result = conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(ip_allowlist=json.dumps(list(allowlist)))
    )
    if result.rowcount != 1:
        raise NotFound(f"no account {account_id}")
    key_changes.record(conn, now, account_id=account_id)


_ACCOUNTS = select(accounts.c.id, accounts.c.owner_email, accounts.c.ip_allowlist)


def _account(row: Sequence[object]) -> Account:
    account_id, email, allowlist = row
    return Account(int(str(account_id)), str(email), tuple(json.loads(str(allowlist))))


def get(conn: Connection, account_id: int) -> Account:
    row = conn.execute(_ACCOUNTS.where(accounts.c.id == account_id)).first()
    if row is None:
        raise NotFound(f"no account {account_id}")
    return _account(row)


def of_owner(conn: Connection, email: str) -> list[Account]:
    """The accounts whose owner address is ``email`` (compared in lower case), oldest first."""
    rows = conn.execute(
        _ACCOUNTS.where(func.lower(accounts.c.owner_email) == email.lower()).order_by(accounts.c.id)
    )
    return [_account(r) for r in rows]


def summaries(conn: Connection) -> list[AccountSummary]:
    """Every account, oldest first, with counts of its keys (one query)."""
    visible = and_(api_keys.c.account_id == accounts.c.id, api_keys.c.deleted_at.is_(None))
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
