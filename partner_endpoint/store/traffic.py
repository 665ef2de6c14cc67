"""Per-key traffic in the store: counts added by every serving process, read for pages and reports.

Writes are additions (``requests = requests + :n``), so any number of processes and replicas
flushing at any time add up exactly. Two tables, each the cheapest that answers its questions:

* ``key_traffic_minutes``: per key and minute, no address; the last hour's chart and the last
  day's totals. Kept a day.
* ``key_traffic_hours``: per key, hour and client address, with the first and last request of
  the hour; the week's chart, who used a key, use after a leak. Kept 90 days.

At 10,000 requests a second over 10,000 keys from 10 addresses each, that is at most 14.4
million minute rows a day (one per busy key and minute: 10,000 x 1,440) and 2.4 million hour
rows (10,000 x 24 x 10), whatever the request rate: rows grow with keys and addresses, not with
requests. Pages read one key's rows through the primary keys, so the tables' size does not slow
them. A store made for event volumes (a columnar database such as ClickHouse) would take the same
rows through this module's functions, unchanged for the pages: the additions map to its
summing merge trees, the reads to ``GROUP BY`` over one key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from partner_endpoint.store.db import chunks, insert_many, one_of, rows_of
from partner_endpoint.store.models import api_keys, key_traffic_hours, key_traffic_minutes


@dataclass(frozen=True, slots=True)
class Count:
    """What one process counted for one key, client address and minute."""

    key_id: int
    address: str
    minute: datetime
    requests: int
    refused: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True, slots=True)
class LastUse:
    key_id: int
    at: datetime
    address: str


@dataclass(frozen=True, slots=True)
class Point:
    """One bar of a chart: a minute or an hour."""

    at: datetime
    requests: int
    refused: int


@dataclass(frozen=True, slots=True)
class AddressUse:
    """A client address's use of a key over a span (an IPv4 address or an IPv6 /64)."""

    address: str
    requests: int
    refused: int
    first_at: datetime
    last_at: datetime


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


_MINUTE_COLUMNS = ("key_id", "minute", "requests", "refused")
_HOUR_COLUMNS = ("key_id", "hour", "address", "requests", "refused", "first_at", "last_at")


def add(conn: Connection, counts: Sequence[Count], last_uses: Iterable[LastUse]) -> None:
    """Add one process's counts (and move its keys' last use forward), in the caller's transaction."""
    dialect = conn.dialect.name
    minutes: dict[tuple[int, datetime], list[int]] = {}
    hours: dict[tuple[int, datetime, str], list[Any]] = {}
    for c in counts:
        per_minute = minutes.setdefault((c.key_id, c.minute), [0, 0])
        per_minute[0] += c.requests
        per_minute[1] += c.refused
        per_hour = hours.get((c.key_id, hour_of(c.minute), c.address))
        if per_hour is None:
            hours[c.key_id, hour_of(c.minute), c.address] = [c.requests, c.refused, c.first_at, c.last_at]
        else:
            per_hour[0] += c.requests
            per_hour[1] += c.refused
            per_hour[2] = min(per_hour[2], c.first_at)
            per_hour[3] = max(per_hour[3], c.last_at)
    if minutes:
        rows = [{"key_id": k, "minute": m, "requests": n, "refused": r} for (k, m), (n, r) in minutes.items()]
        conn.execute(_add_minutes(dialect), rows_of(dialect, rows, _MINUTE_COLUMNS))
    if hours:
        rows = [
            {"key_id": k, "hour": h, "address": a, "requests": n, "refused": r, "first_at": f, "last_at": t}
            for (k, h, a), (n, r, f, t) in hours.items()
        ]
        conn.execute(_add_hours(dialect), rows_of(dialect, rows, _HOUR_COLUMNS))
    uses = [{"key": u.key_id, "when": u.at, "from_address": u.address} for u in last_uses]
    if uses:
        conn.execute(_LAST_USE, uses)


def _add_minutes(dialect: str) -> Any:
    stmt = insert_many(dialect, key_traffic_minutes, _MINUTE_COLUMNS)
    table = key_traffic_minutes.c
    return stmt.on_conflict_do_update(
        index_elements=["key_id", "minute"],
        set_={
            "requests": table.requests + stmt.excluded.requests,
            "refused": table.refused + stmt.excluded.refused,
        },
    )


def _add_hours(dialect: str) -> Any:
    stmt = insert_many(dialect, key_traffic_hours, _HOUR_COLUMNS)
    table = key_traffic_hours.c
    return stmt.on_conflict_do_update(
        index_elements=["key_id", "hour", "address"],
        set_={
            "requests": table.requests + stmt.excluded.requests,
            "refused": table.refused + stmt.excluded.refused,
            "first_at": func.min(table.first_at, stmt.excluded.first_at)
            if dialect != "postgresql"
            else func.least(table.first_at, stmt.excluded.first_at),
            "last_at": func.max(table.last_at, stmt.excluded.last_at)
            if dialect != "postgresql"
            else func.greatest(table.last_at, stmt.excluded.last_at),
        },
    )


_LAST_USE = (
    update(api_keys)
    .where(
        api_keys.c.id == bindparam("key"),
        (api_keys.c.last_used_at.is_(None)) | (api_keys.c.last_used_at < bindparam("when")),
    )
    .values(last_used_at=bindparam("when"), last_used_address=bindparam("from_address"))
)


def prune(conn: Connection, now: datetime, minutes_kept: timedelta, hours_kept: timedelta) -> None:
    """Forget minutes and hours past their retention (indexed by time)."""
    conn.execute(delete(key_traffic_minutes).where(key_traffic_minutes.c.minute < now - minutes_kept))
    conn.execute(delete(key_traffic_hours).where(key_traffic_hours.c.hour < hour_of(now - hours_kept)))


# --- reading ---------------------------------------------------------------------------------------


def per_minute(conn: Connection, key_id: int, since: datetime) -> list[Point]:
    m = key_traffic_minutes.c
    rows = conn.execute(
        select(m.minute, m.requests, m.refused)
        .where(m.key_id == key_id, m.minute >= since)
        .order_by(m.minute)
    )
    return [Point(at, int(n), int(r)) for at, n, r in rows]


def per_hour(conn: Connection, key_id: int, since: datetime) -> list[Point]:
    h = key_traffic_hours.c
    rows = conn.execute(
        select(h.hour, func.sum(h.requests), func.sum(h.refused))
        .where(h.key_id == key_id, h.hour >= hour_of(since))
        .group_by(h.hour)
        .order_by(h.hour)
    )
    return [Point(at, int(n), int(r)) for at, n, r in rows]


def by_address(
    conn: Connection, key_id: int, since: datetime, until: datetime | None = None, limit: int | None = None
) -> list[AddressUse]:
    """Who used the key in the hours from ``since``'s (to ``until``'s, excluded), most requests first."""
    h = key_traffic_hours.c
    query = (
        select(
            h.address, func.sum(h.requests), func.sum(h.refused), func.min(h.first_at), func.max(h.last_at)
        )
        .where(h.key_id == key_id, h.hour >= hour_of(since))
        .group_by(h.address)
        .order_by(func.sum(h.requests).desc(), func.sum(h.refused).desc(), h.address)
    )
    if until is not None:
        query = query.where(h.hour < hour_of(until))
    if limit is not None:
        query = query.limit(limit)
    return [AddressUse(a, int(n), int(r), f, t) for a, n, r, f, t in conn.execute(query)]


def addresses_before(conn: Connection, key_id: int, moment: datetime, span: timedelta) -> set[str]:
    """The addresses that used (or tried) the key in ``span`` before ``moment``."""
    h = key_traffic_hours.c
    rows = conn.execute(
        select(h.address)
        .where(h.key_id == key_id, h.hour >= hour_of(moment - span), h.first_at < moment)
        .distinct()
    )
    return {str(a) for (a,) in rows}


def recent_totals(conn: Connection, key_ids: Sequence[int], since: datetime) -> Mapping[int, tuple[int, int]]:
    """(requests, refused) since ``since`` per key, from the minutes (one query per page of keys)."""
    if not key_ids:
        return {}
    m = key_traffic_minutes.c
    dialect = conn.dialect.name
    totals: dict[int, tuple[int, int]] = {}
    query = (
        select(m.key_id, func.sum(m.requests), func.sum(m.refused))
        .where(one_of(m.key_id, "ids", dialect), m.minute >= since)
        .group_by(m.key_id)
    )
    for chunk in chunks(list(key_ids), dialect):
        totals.update((int(k), (int(n), int(r))) for k, n, r in conn.execute(query, {"ids": chunk}))
    return totals
