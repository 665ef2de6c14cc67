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
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Integer, bindparam, case, delete, func, select, update

from partner_endpoint.store.db import chunks, one_of, stage
from partner_endpoint.store.models import api_keys, key_traffic_hours, key_traffic_minutes

Cell = tuple[int, str, int]
"""(key id, client address, minutes since the epoch): what one process counts apart."""
Counts = Mapping[Cell, Sequence[float]]
"""Cell -> (requests, refused, first, last): times in seconds since the epoch. The recorder's own
shape, written as it is: 100,000 objects made for a flush cost more than the flush."""


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


def epoch_minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def epoch_hour(moment: datetime) -> int:
    return int(moment.timestamp() // 3600)


def hour_of(moment: datetime) -> datetime:
    """The start of ``moment``'s hour, in UTC."""
    return _moment(epoch_hour(moment) * 3600)


def minute_of(moment: datetime) -> datetime:
    """The start of ``moment``'s minute, in UTC."""
    return _moment(epoch_minute(moment) * 60)


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def add(conn: Connection, counts: Counts, last_uses: Iterable[LastUse]) -> None:
    """Add one process's counts (and move its keys' last use forward), in the caller's transaction.

    The cells go in as they are counted, in bulk (:func:`~partner_endpoint.store.db.stage`), and the
    database sums them into minutes and hours: per-row work in Python (SQLAlchemy's parameters,
    or summing 100,000 cells) cost more than the whole write.
    """
    if counts:
        stage(conn, "staged_traffic", _CELL_COLUMNS, ((k, a, m, *v) for (k, a, m), v in counts.items()))
        conn.exec_driver_sql(_ADD_MINUTES)
        collate = 'COLLATE "C"' if conn.dialect.name == "postgresql" else ""
        conn.exec_driver_sql(_ADD_HOURS.format(collate=collate))
    uses = [(u.key_id, u.at, u.address) for u in last_uses]
    if not uses:
        return
    if conn.dialect.name == "postgresql":
        stage(conn, "staged_last_uses", _USE_COLUMNS, uses)
        conn.exec_driver_sql(_LAST_USE_POSTGRES)
    else:  # through SQLAlchemy: its type stores the times as SQLite's other rows have them
        conn.execute(_LAST_USE, [{"key": k, "when": at, "from_address": a} for k, at, a in uses])


_USE_COLUMNS = (("key_id", "int4"), ("at", "timestamptz"), ("address", "text"))
_CELL_COLUMNS = (
    ("key_id", "int4"),
    ("address", "text"),
    ("minute", "int4"),
    ("requests", "int4"),
    ("refused", "int4"),
    ("first_at", "float8"),
    ("last_at", "float8"),
)
# Sums added to what is there; rows in primary-key order, so that processes flushing at the same
# moment lock shared rows in the same order (no deadlock). "WHERE true": SQLite's upsert after a
# SELECT needs it. On PostgreSQL the address sorts as bytes, as its column does (COLLATE "C"):
# a locale's order costs more in every comparison, and any fixed order will do.
_ADD_MINUTES = (
    "INSERT INTO key_traffic_minutes (key_id, minute, requests, refused) "
    "SELECT key_id, minute, sum(requests), sum(refused) FROM staged_traffic WHERE true "
    "GROUP BY key_id, minute ORDER BY key_id, minute "
    "ON CONFLICT (key_id, minute) DO UPDATE SET "
    "requests = key_traffic_minutes.requests + excluded.requests, "
    "refused = key_traffic_minutes.refused + excluded.refused"
)
_ADD_HOURS = (
    "INSERT INTO key_traffic_hours (key_id, hour, address, requests, refused, first_at, last_at) "
    "SELECT key_id, minute / 60, address, sum(requests), sum(refused), min(first_at), max(last_at) "
    "FROM staged_traffic WHERE true "
    "GROUP BY key_id, minute / 60, address ORDER BY key_id, minute / 60, address {collate} "
    "ON CONFLICT (key_id, hour, address) DO UPDATE SET "
    "requests = key_traffic_hours.requests + excluded.requests, "
    "refused = key_traffic_hours.refused + excluded.refused, "
    "first_at = CASE WHEN excluded.first_at < key_traffic_hours.first_at "
    "THEN excluded.first_at ELSE key_traffic_hours.first_at END, "
    "last_at = CASE WHEN excluded.last_at > key_traffic_hours.last_at "
    "THEN excluded.last_at ELSE key_traffic_hours.last_at END"
)
_LAST_USE_POSTGRES = (
    "UPDATE api_keys SET last_used_at = u.at, last_used_address = u.address FROM staged_last_uses AS u "
    "WHERE api_keys.id = u.key_id AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < u.at)"
)
_LAST_USE = (
    update(api_keys)
    .where(
        api_keys.c.id == bindparam("key"),
        (api_keys.c.last_used_at.is_(None)) | (api_keys.c.last_used_at < bindparam("when")),
    )
    .values(last_used_at=bindparam("when"), last_used_address=bindparam("from_address"))
)
"""Each key's last use moves forward only (processes flush in any order)."""


def prune(conn: Connection, now: datetime, minutes_kept: timedelta, hours_kept: timedelta) -> None:
    """Forget minutes and hours past their retention (indexed by time)."""
    conn.execute(
        delete(key_traffic_minutes).where(key_traffic_minutes.c.minute < epoch_minute(now - minutes_kept))
    )
    conn.execute(delete(key_traffic_hours).where(key_traffic_hours.c.hour < epoch_hour(now - hours_kept)))


# --- reading ---------------------------------------------------------------------------------------


# The page's reads are built once: a statement built per call cost more than its query on SQLite.
_m, _h = key_traffic_minutes.c, key_traffic_hours.c
_PER_MINUTE = (
    select(_m.minute, _m.requests, _m.refused)
    .where(_m.key_id == bindparam("key"), _m.minute >= bindparam("since"))
    .order_by(_m.minute)
)
_PER_HOUR = (
    select(_h.hour, func.sum(_h.requests), func.sum(_h.refused))
    .where(_h.key_id == bindparam("key"), _h.hour >= bindparam("since"))
    .group_by(_h.hour)
    .order_by(_h.hour)
)
_BY_ADDRESS = (
    select(
        _h.address, func.sum(_h.requests), func.sum(_h.refused), func.min(_h.first_at), func.max(_h.last_at)
    )
    .where(_h.key_id == bindparam("key"), _h.hour >= bindparam("since"))
    .group_by(_h.address)
    .order_by(func.sum(_h.requests).desc(), func.sum(_h.refused).desc(), _h.address)
)
_TOP_ADDRESSES = _BY_ADDRESS.limit(bindparam("limit", type_=Integer))
_after = _h.hour >= bindparam("reported_hour")
_SINCE_REPORT = (
    select(
        _h.address,
        func.sum(case((_after, _h.requests), else_=0)),
        func.sum(case((_after, _h.refused), else_=0)),
        func.min(case((_after, _h.first_at))),
        func.max(case((_after, _h.last_at))),
        func.max(case((_h.first_at < bindparam("reported_at"), 1), else_=0)),
    )
    .where(_h.key_id == bindparam("key"), _h.hour >= bindparam("since"))
    .group_by(_h.address)
)


def per_minute(conn: Connection, key_id: int, since: datetime) -> list[Point]:
    rows = conn.execute(_PER_MINUTE, {"key": key_id, "since": epoch_minute(since)})
    return [Point(_moment(minute * 60), int(n), int(r)) for minute, n, r in rows]


def per_hour(conn: Connection, key_id: int, since: datetime) -> list[Point]:
    rows = conn.execute(_PER_HOUR, {"key": key_id, "since": epoch_hour(since)})
    return [Point(_moment(hour * 3600), int(n), int(r)) for hour, n, r in rows]


def by_address(conn: Connection, key_id: int, since: datetime, limit: int | None = None) -> list[AddressUse]:
    """Who used the key in the hours from ``since``'s, most requests first (the first ``limit``)."""
    params = {"key": key_id, "since": epoch_hour(since), "limit": limit}
    rows = conn.execute(_BY_ADDRESS if limit is None else _TOP_ADDRESSES, params)
    return [AddressUse(a, int(n), int(r), _moment(f), _moment(t)) for a, n, r, f, t in rows]


def since_report(
    conn: Connection, key_id: int, reported: datetime, span: timedelta
) -> list[tuple[AddressUse, bool]]:
    """Who used (or tried) the key in the hours from ``reported``'s, each with whether it had used the
    key in ``span`` before ``reported`` (what :func:`addresses_before` answers): one scan for both.

    Addresses seen only before the report are left out."""
    rows = conn.execute(
        _SINCE_REPORT,
        {
            "key": key_id,
            "since": epoch_hour(reported - span),
            "reported_hour": epoch_hour(reported),
            "reported_at": reported.timestamp(),
        },
    )
    return [
        (AddressUse(a, int(n), int(r), _moment(f), _moment(t)), bool(known))
        for a, n, r, f, t, known in rows
        if t is not None
    ]


def addresses_before(conn: Connection, key_id: int, moment: datetime, span: timedelta) -> set[str]:
    """The addresses that used (or tried) the key in ``span`` before ``moment``."""
    h = key_traffic_hours.c
    rows = conn.execute(
        select(h.address)
        .where(h.key_id == key_id, h.hour >= epoch_hour(moment - span), h.first_at < moment.timestamp())
        .distinct()
    )
    return {str(a) for (a,) in rows}


def recent_totals(conn: Connection, key_ids: Sequence[int], since: datetime) -> Mapping[int, tuple[int, int]]:
    """(requests, refused) in the hours from ``since``'s per key (one query per page of keys).

    From the hours, not the minutes: a day is 24 rows per key and address instead of 1,440 per
    key, which made the keys list the slowest page."""
    if not key_ids:
        return {}
    h = key_traffic_hours.c
    dialect = conn.dialect.name
    totals: dict[int, tuple[int, int]] = {}
    query = (
        select(h.key_id, func.sum(h.requests), func.sum(h.refused))
        .where(one_of(h.key_id, "ids", dialect), h.hour >= epoch_hour(since))
        .group_by(h.key_id)
    )
    for chunk in chunks(list(key_ids), dialect):
        totals.update((int(k), (int(n), int(r))) for k, n, r in conn.execute(query, {"ids": chunk}))
    return totals
