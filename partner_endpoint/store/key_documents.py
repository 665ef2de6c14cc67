"""An origin's key document as every process on the database shares it: a row per origin, and a claim
to fetch.

A process that meets an unknown key identifier first reads its origin's row (another process may
have fetched the key already), then claims the right to fetch with a conditional UPDATE that only
one process per interval can win, on SQLite and PostgreSQL alike. An origin's row is made the
first time it is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, or_, select, update

from partner_endpoint.domain.origins import GITHUB
from partner_endpoint.store.db import read_transaction, upsert, write_transaction
from partner_endpoint.store.models import key_documents as table


@dataclass(frozen=True, slots=True)
class SharedDocument:
    document: str | None
    """The last document fetched (JSON text), or None before the first success."""
    fetched_at: datetime | None
    attempted_at: datetime | None
    finished_at: datetime | None
    failed: bool
    """The last attempt failed: an unknown identifier may be a key the origin rotated in meanwhile."""

    def due(self, now: datetime, interval: timedelta, abandoned_after: timedelta) -> bool:
        """Whether a fetch may be claimed: none for ``interval``, or one left unfinished for
        ``abandoned_after`` (its process died: a live one finishes within its fetch timeout)."""
        if self.attempted_at is None or now - self.attempted_at >= interval:
            return True
        return self.in_flight and now - self.attempted_at >= abandoned_after

    @property
    def in_flight(self) -> bool:
        """A process claimed a fetch and has not recorded its outcome (yet: it may also have died)."""
        return self.attempted_at is not None and (
            self.finished_at is None or self.finished_at < self.attempted_at
        )


class SharedKeyDocument:
    def __init__(self, engine: Engine, origin: str = GITHUB.name) -> None:
        self._engine = engine
        self._origin = origin
        self._row = table.c.origin == origin

    def load(self) -> SharedDocument:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(table).where(self._row)).mappings().one_or_none()
        if row is None:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    upsert(conn, table)
                    .values(origin=self._origin, failed=False)
                    .on_conflict_do_nothing(index_elements=["origin"])
                )
                row = conn.execute(select(table).where(self._row)).mappings().one()
        return SharedDocument(
            row["document"], row["fetched_at"], row["attempted_at"], row["finished_at"], bool(row["failed"])
        )

    def claim(self, now: datetime, interval: timedelta, abandoned_after: timedelta) -> bool:
        """Whether this process may fetch now (see :meth:`SharedDocument.due`); one claim wins."""
        unfinished = or_(table.c.finished_at.is_(None), table.c.finished_at < table.c.attempted_at)
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                update(table)
                .where(
                    self._row,
                    or_(
                        table.c.attempted_at.is_(None),
                        table.c.attempted_at <= now - interval,
                        and_(unfinished, table.c.attempted_at <= now - abandoned_after),
                    ),
                )
                .values(attempted_at=now)
            )
        return result.rowcount == 1

    def save(self, document: str | None, now: datetime) -> None:
        """Record the outcome of the fetch claimed at ``now``: the document, or (None) that it failed."""
        values: dict[str, object] = {"failed": document is None, "finished_at": now}
        if document is not None:
            values |= {"document": document, "fetched_at": now}
        with write_transaction(self._engine) as conn:
            conn.execute(update(table).where(self._row).values(**values))
