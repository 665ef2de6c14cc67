"""The partner endpoint in-process: a TestClient, a hand-moved clock, and the tables an alert may change."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # StarletteDeprecationWarning: it would like httpx2; httpx is installed
    from starlette.testclient import TestClient

import rules
from partner_endpoint.alerts.batch import parse_batch
from partner_endpoint.alerts.receiver import sightings
from partner_endpoint.domain.networks import parse_network
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.settings import LeakPolicy
from partner_endpoint.store import accounts
from partner_endpoint.store import api_keys as key_store
from partner_endpoint.store.api_keys import StoredKey
from partner_endpoint.store.db import read_transaction
from partner_endpoint.store.models import api_keys, leak_events, mail_outbox, metadata
from partner_endpoint.store.secretbox import SecretBox
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
    engine: Engine, api_key: str, clock: Clock, *, url: str, source: str, policy: LeakPolicy, sender: str
) -> None:
    """GitHub's report of ``api_key`` at ``url``, recorded as the endpoint records it (no HTTP)."""
    service = LeakService(engine, clock, policy=policy, sender=sender)
    service.respond(sightings(parse_batch(alert_body(api_key, url=url, source=source)).alerts))


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


def key_status(engine: Engine, key_id: int) -> str:
    """The status of key ``key_id`` (active, flagged, revoked) as stored."""
    return next(r["status"] for r in rows(engine, api_keys) if r["id"] == key_id)


@dataclass(frozen=True)
class Minted:
    """A key pair put straight into the store (to arrange a test's state in one transaction)."""

    key_id: int
    api_key: str
    signing_secret: str


def add_account(conn: Connection, email: str, allow_ips: Sequence[str], now: datetime) -> int:
    """An account in the caller's transaction; :class:`AccountService` is what the service uses."""
    return accounts.create(conn, email, [str(parse_network(n)) for n in allow_ips], now)


def add_key(
    conn: Connection,
    box: SecretBox,
    account_id: int,
    label: str,
    now: datetime,
    *,
    rotated_from: int | None = None,
) -> Minted:
    """A key pair in the caller's transaction, stored as :class:`KeyService` stores one (hashes, the
    secret encrypted): thousands of keys in one transaction, where a test needs them."""
    pair = rules.mint_pair()
    stored = StoredKey(
        rules.identity(pair.api_key),
        pair.api_key[-4:],
        rules.identity(pair.signing_secret),
        box.encrypt(pair.signing_secret),
    )
    key_id = key_store.create(conn, account_id, label, stored, now, rotated_from=rotated_from)
    return Minted(key_id, pair.api_key, pair.signing_secret)


@dataclass(frozen=True)
class Issued:
    """An account with one key pair, as the ``issue`` fixture makes it."""

    account_id: int
    key_id: int
    api_key: str
    signing_secret: str


@dataclass
class Clock:
    """Wall clock and monotonic clock (:class:`partner_endpoint.clock.Clock`) that tests move by hand."""

    at: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    mono: float = 1000.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        self.mono += seconds
