"""Each account's activity log: what happened to its keys, sessions and allowlist, by whom, from where.

Entries are written by the services in the transaction of the change they record, so the log
holds a change exactly when the change happened. ``details`` is a small JSON object of the
entry's own facts (a leak's origin and url, the key a rotation replaced); never a credential.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from partner_endpoint.store.models import activity

KINDS = (
    "key_created",
    "key_rotated",
    "key_revoked",
    "key_deleted",
    "leak_reported",
    "followup_mail_sent",
    "signed_in",
    "signed_out",
    "allowlist_changed",
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: the signed-in address (and client address), or the command line."""

    name: str
    client: str | None = None


COMMAND_LINE = Actor("command line")
MAIL_WORKER = Actor("mail")


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    account_id: int
    at: datetime
    kind: str
    key_id: int | None
    actor: str
    client: str | None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "key_id": self.key_id,
            "actor": self.actor,
            "client": self.client,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One entry to write: what happened to which account (and key)."""

    account_id: int
    kind: str
    key_id: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def record(
    conn: Connection,
    account_ids: Sequence[int] | int,
    kind: str,
    at: datetime,
    actor: Actor,
    *,
    key_id: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """One entry per account given, in the caller's transaction."""
    ids = [account_ids] if isinstance(account_ids, int) else list(account_ids)
    record_all(conn, [Change(i, kind, key_id, details or {}) for i in ids], at, actor)


def record_all(conn: Connection, changes: Sequence[Change], at: datetime, actor: Actor) -> None:
    """Many entries by one actor at one time, in one statement (a batch of 10,000 leaked keys)."""
    for change in changes:
        if change.kind not in KINDS:
            raise ValueError(f"unknown activity {change.kind!r}")
    if changes:
        conn.execute(
            insert(activity),
            [
                {
                    "account_id": c.account_id,
                    "at": at,
                    "kind": c.kind,
                    "key_id": c.key_id,
                    "actor": actor.name[:320],
                    "client": actor.client,
                    "details": json.dumps(
                        dict(c.details), separators=(",", ":"), ensure_ascii=False, default=str
                    ),
                }
                for c in changes
            ],
        )


def _entry(row: Any) -> Entry:
    return Entry(
        row.id, row.account_id, row.at, row.kind, row.key_id, row.actor, row.client, json.loads(row.details)
    )


def page(conn: Connection, account_id: int, offset: int, limit: int) -> tuple[list[Entry], int]:
    """A page of an account's log, newest first, and how many entries it holds."""
    total = conn.execute(
        select(func.count()).select_from(activity).where(activity.c.account_id == account_id)
    ).scalar_one()
    rows = conn.execute(
        select(activity)
        .where(activity.c.account_id == account_id)
        .order_by(activity.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [_entry(r) for r in rows], int(total)


def since(
    conn: Connection, moment: datetime | None, account_id: int | None = None, limit: int = 100_000
) -> list[Entry]:
    """Entries from ``moment`` on (all without one), oldest first: the order a SIEM reads them in."""
    query = select(activity).order_by(activity.c.id).limit(limit)
    if moment is not None:
        query = query.where(activity.c.at >= moment)
    if account_id is not None:
        query = query.where(activity.c.account_id == account_id)
    return [_entry(r) for r in conn.execute(query)]
