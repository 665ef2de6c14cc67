"""Fixed-window counters in the database, so every process of the service shares one limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, literal, select

from partner_endpoint.store.db import upsert
from partner_endpoint.store.models import UTCDateTime, rate_limits


def hit(conn: Connection, bucket: str, now: datetime, window: timedelta) -> int:
    """Count one hit in ``bucket``; returns the hits in its current window, this one included.

    One statement (an upsert) per hit: concurrent hits from several processes all count.
    """
    expired = rate_limits.c.window_start <= literal(now - window, UTCDateTime)
    stmt = upsert(conn, rate_limits).values(bucket=bucket, window_start=now, hits=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["bucket"],
        set_={
            "window_start": case((expired, literal(now, UTCDateTime)), else_=rate_limits.c.window_start),
            "hits": case((expired, 1), else_=rate_limits.c.hits + 1),
        },
    )
    return int(conn.execute(stmt.returning(rate_limits.c.hits)).scalar_one())


def spent(conn: Connection, bucket: str, now: datetime, window: timedelta) -> int:
    """The hits in ``bucket``'s current window, read only: checked first, a spent budget costs no write."""
    hits = conn.execute(
        select(rate_limits.c.hits).where(
            rate_limits.c.bucket == bucket, rate_limits.c.window_start > now - window
        )
    ).scalar_one_or_none()
    return int(hits or 0)


def prune(conn: Connection, now: datetime, window: timedelta, *, prefix: str) -> None:
    """Forget the windows that are over of the buckets named ``prefix…``: each kind of bucket has a
    window of its own, and only its owner knows when one is over."""
    conn.execute(
        delete(rate_limits).where(
            rate_limits.c.window_start <= now - window,
            rate_limits.c.bucket.startswith(prefix, autoescape=True),
        )
    )
