"""The key change log: written with every change authentication caches, read by every serving process.

Every store function that revokes or flags a key or sets an account's allowlist calls :func:`record`
in its own transaction, so a change and its log row commit together or not at all. Each serving
process reads the rows after its cursor (:func:`read`) a few times a second and drops what changed
from its cache.

Reading in commit order, which is what makes a cursor exact:

* SQLite has one writer at a time, and a row's id is handed out while its transaction holds the
  write lock, so rows become visible in id order: the cursor is the last id read.
* PostgreSQL hands out ids at insert, not at commit, so a smaller id can become visible after a
  larger one. Each row carries its transaction's id (``txid``). A read first takes its snapshot's
  ``xmin``: every transaction older than it has finished, so rows with ``txid < xmin`` are final.
  Rows at or above it are read again the next time (their ids are remembered, so none is applied
  twice) until ``xmin`` passes them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, text

from partner_endpoint.store.models import key_changes

BULK = 500
"""A change of more keys than this is logged as one "anything may have changed" row."""


@dataclass(frozen=True, slots=True)
class KeyChange:
    key_id: int | None
    account_id: int | None

    @property
    def everything(self) -> bool:
        return self.key_id is None and self.account_id is None


@dataclass(frozen=True, slots=True)
class Cursor:
    position: int
    """SQLite: the last id read. PostgreSQL: the ``xmin`` of the last read."""
    seen: frozenset[int] = frozenset()
    """PostgreSQL: ids already read whose transaction ids are at or above ``position``."""


def record(
    conn: Connection, now: datetime, *, key_ids: Collection[int] = (), account_id: int | None = None
) -> None:
    """Log that these keys (or this account's allowlist) changed, in the caller's transaction."""
    rows: list[dict[str, object]]
    if len(key_ids) > BULK:
        rows = [{"key_id": None, "account_id": None, "changed_at": now}]
    else:
        rows = [{"key_id": k, "account_id": None, "changed_at": now} for k in sorted(key_ids)]
    if account_id is not None:
        rows.append({"key_id": None, "account_id": account_id, "changed_at": now})
    if rows:
        conn.execute(insert(key_changes), rows)


def start(conn: Connection) -> Cursor:
    """A cursor at the present: what was logged before it is already in the database's state."""
    if conn.dialect.name != "postgresql":
        return Cursor(int(conn.execute(select(func.coalesce(func.max(key_changes.c.id), 0))).scalar_one()))
    _, cursor = read(conn, Cursor(_xmin(conn)))
    return cursor


def read(conn: Connection, cursor: Cursor) -> tuple[list[KeyChange], Cursor]:
    """The changes committed since ``cursor``, oldest first, and the cursor after them."""
    columns = (key_changes.c.id, key_changes.c.key_id, key_changes.c.account_id)
    if conn.dialect.name != "postgresql":
        ordered = conn.execute(
            select(*columns).where(key_changes.c.id > cursor.position).order_by(key_changes.c.id)
        ).all()
        position = ordered[-1].id if ordered else cursor.position
        return [KeyChange(r.key_id, r.account_id) for r in ordered], Cursor(position)
    xmin = _xmin(conn)  # before the rows: every transaction below it is over when they are read
    rows = conn.execute(
        select(*columns, key_changes.c.txid)
        .where(key_changes.c.txid >= cursor.position)
        .order_by(key_changes.c.id)
    ).all()
    changes = [KeyChange(r.key_id, r.account_id) for r in rows if r.id not in cursor.seen]
    return changes, Cursor(xmin, frozenset(r.id for r in rows if r.txid >= xmin))


_XMIN = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


def _xmin(conn: Connection) -> int:
    return int(conn.execute(_XMIN).scalar_one())
