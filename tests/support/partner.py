"""The partner endpoint in-process: a TestClient, a hand-moved clock, and the tables an alert may change."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # StarletteDeprecationWarning: it would like httpx2; httpx is installed
    from starlette.testclient import TestClient

from partner_endpoint.alerts.batch import parse_alerts
from partner_endpoint.services.leaks import record_and_notify
from partner_endpoint.store.db import read_transaction, write_transaction
from partner_endpoint.store.models import api_keys, leak_events, mail_outbox, metadata
from tests.support.github import alert_body

METRICS_TOKEN = "scrape-" + "m" * 25
"""The token the endpoint tests' settings give ``/metrics`` (it is not served without one or a port)."""


def scrape(client: TestClient) -> str:
    """``/metrics`` as Prometheus reads it, with :data:`METRICS_TOKEN`."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.text


def start_client(app: Starlette, client: tuple[str, int] = ("127.0.0.1", 50000)) -> TestClient:
    """A TestClient whose peer address is ``client`` (the default is not an IP address)."""
    return TestClient(app, client=client)


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything an alert may change, to assert that a rejected one changed nothing."""
    with read_transaction(engine) as conn:
        return {
            "statuses": sorted(conn.execute(select(api_keys.c.id, api_keys.c.status)).all()),
            "leaks": conn.execute(select(func.count()).select_from(leak_events)).scalar_one(),
            "mails": conn.execute(select(func.count()).select_from(mail_outbox)).scalar_one(),
        }


def report_leak(
    engine: Engine, api_key: str, now: datetime, *, url: str, source: str, policy: str, sender: str
) -> None:
    """GitHub's report of ``api_key`` at ``url``, recorded as the endpoint records it (no HTTP)."""
    with write_transaction(engine) as conn:
        record_and_notify(
            conn,
            [a.sighting for a in parse_alerts(alert_body(api_key, url=url, source=source))],
            policy=policy,
            now=now,
            sender=sender,
        )


def every_row(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table, each table's rows in a fixed order: to show that nothing was written."""
    with read_transaction(engine) as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in conn.execute(select(table)))
            for table in metadata.sorted_tables
        }


def rows(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with read_transaction(engine) as conn:
        return [
            dict(r)
            for r in conn.execute(select(table).order_by(table.c[next(iter(table.c.keys()))])).mappings()
        ]


@dataclass(frozen=True)
class Issued:
    """An account with one key pair, as the ``issue`` fixture makes it."""

    account_id: int
    key_id: int
    api_key: str
    signing_secret: str


@dataclass
class Clock:
    """Wall clock and monotonic clock that tests move by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    mono: float = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds
