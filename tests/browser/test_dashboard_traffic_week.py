"""A key with a week of traffic, in Debian's Chromium against a real ``serve``: its charts, who used it
after its leak report, the rotation step and the keys list, at desktop and phone widths.

The journey (test_dashboard_journey.py) makes every request itself, so its charts hold a minute of
traffic. Here a week is written first, as the serving processes' flush writes it
(``TrafficService.write``), for an owner's servers (203.0.113.10 and .11), a staging key, and,
after the leak report three hours ago, two new addresses. The oracle is what was written, summed
here. The screenshots under test-artifacts/dashboard-traffic are the ones docs/dashboard.md shows.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from partner_endpoint.api.traffic import Snapshot
from partner_endpoint.services.traffic import TrafficService
from partner_endpoint.store.db import make_engine, write_transaction
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.secretbox import SecretBox
from tests.support.browser import ARTIFACTS, Screenshots
from tests.support.partner import Clock, add_account, add_key, report_leak
from tests.support.services import ServerProcess, partner_cli, service_env

SHOTS = ARTIFACTS.parent / "dashboard-traffic"
OWN = ("203.0.113.10", "203.0.113.11")
NEW = ("192.0.2.77", "2001:db8:42:7::/64")
LEAK_URL = "https://github.com/acme/shop/blob/main/config/.env"


@dataclass
class Week:
    """Counts as one process's snapshot holds them, with their totals per key and per address."""

    cells: dict[tuple[int, str, int], list[float]] = field(default_factory=dict)
    uses: dict[int, tuple[float, str]] = field(default_factory=dict)
    requests: dict[int, int] = field(default_factory=dict)
    refused: dict[int, int] = field(default_factory=dict)
    after: dict[str, tuple[int, int]] = field(default_factory=dict)
    """(requests, refused) of each address from the hour of the report on, for the leaked key."""

    def count(self, key_id: int, address: str, at: datetime, n: int, refused: int, after: datetime) -> None:
        seconds = at.timestamp()
        cell = self.cells.setdefault((key_id, address, int(seconds // 60)), [0, 0, seconds, seconds])
        cell[0] += n
        cell[1] += refused
        cell[2], cell[3] = min(cell[2], seconds), max(cell[3], seconds)
        if n and seconds >= self.uses.get(key_id, (0.0, ""))[0]:
            self.uses[key_id] = (seconds, address)
        self.requests[key_id] = self.requests.get(key_id, 0) + n
        self.refused[key_id] = self.refused.get(key_id, 0) + refused
        if at >= after.replace(minute=0, second=0, microsecond=0):
            before = self.after.get(address, (0, 0))
            self.after[address] = (before[0] + n, before[1] + refused)


@dataclass(frozen=True)
class Seeded:
    server: ServerProcess
    env: dict[str, str]
    production: int
    staging: int
    week: Week


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    database = f"sqlite:///{tmp_path / 'soundpiece.db'}"
    secret = Fernet.generate_key().decode()
    engine = make_engine(database)
    migrate(engine)
    now = datetime.now(UTC)
    clock = Clock(now - timedelta(days=20))
    with write_transaction(engine) as conn:
        account = add_account(conn, "owner@example.com", [], clock.now())
        production = add_key(conn, SecretBox([secret]), account, "production-server", clock.now())
        staging = add_key(conn, SecretBox([secret]), account, "staging", clock.now())
        add_key(conn, SecretBox([secret]), account, "old-ci", clock.now() - timedelta(days=40))
    reported = now - timedelta(hours=3, minutes=20)
    week, rng = Week(), random.Random(16)
    # From 6 days 20 hours ago (well inside the week's 168 hours) to a few minutes ago: a busy
    # afternoon and a quiet night each day on the owner's two servers, staging now and then.
    at = now - timedelta(days=6, hours=20)
    while at < now - timedelta(minutes=3):
        load = 6 + int(14 * max(0.0, 1 - abs(at.hour - 14) / 8))
        for address in OWN:
            week.count(production.key_id, address, at, max(0, int(rng.gauss(load, 3))), 0, reported)
        if rng.random() < 0.3:
            week.count(staging.key_id, "198.51.100.4", at, rng.randint(1, 4), 0, reported)
        at += timedelta(minutes=7)
    at = reported + timedelta(minutes=35)
    while at < now - timedelta(minutes=3):
        week.count(production.key_id, NEW[0], at, rng.randint(0, 5), rng.randint(0, 1), reported)
        at += timedelta(minutes=3)
    week.count(production.key_id, NEW[1], now - timedelta(minutes=40), 0, 3, reported)
    service = TrafficService(
        engine, clock, sender="s@example.com", minutes_kept=timedelta(days=1), hours_kept=timedelta(days=90)
    )
    service.write(Snapshot(week.cells, week.uses))
    clock.at = reported
    report_leak(
        engine,
        production.api_key,
        clock,
        url=LEAK_URL,
        source="commit",
        policy="flag",
        sender="s@example.com",
    )
    engine.dispose()
    env = service_env(database_url=database, secret_key=secret, mail_dir=str(tmp_path / "mail"))
    server = ServerProcess(env, tmp_path, "serve")
    env["SOUNDPIECE_DASHBOARD_URL"] = f"{server.url}/dashboard"
    with server:
        yield Seeded(server, env, production.key_id, staging.key_id, week)


def test_a_week_of_traffic(chromium: Any, seeded: Seeded) -> None:
    base, week = seeded.server.url, seeded.week
    shots = Screenshots(SHOTS)
    print(f"\ntraffic screenshots: {SHOTS}")
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(partner_cli(seeded.env, "sign-in-link", "owner@example.com")["url"])
    page.get_by_role("button", name="Continue to dashboard").click()
    page.get_by_role("heading", name="API keys", exact=True).wait_for()
    old_ci = page.locator("#key-list tbody tr", has_text="old-ci")
    assert "Unused" in old_ci.inner_text() and "none" in old_ci.inner_text()
    shots.take(page, "keys", full_page=False)

    # A key with traffic: the week's totals and its chart's table are what was written.
    page.goto(f"{base}/dashboard/keys/{seeded.staging}")
    requests = week.requests[seeded.staging]
    assert page.locator(".traffic dd").first.inner_text() == f"{requests:,} requests"
    page.get_by_text("Show the numbers").first.click()
    assert page.locator("#week-chart-numbers tfoot td").first.inner_text() == f"{requests:,}"
    assert page.locator("#top-addresses tbody tr").all_inner_texts()[0].split()[:2] == [
        "198.51.100.4",
        f"{requests:,}",
    ]
    page.get_by_text("Show the numbers").first.click()  # closed again for the picture
    shots.element(page.locator("section[aria-labelledby=traffic-title]"), "key-traffic")

    # The leaked key: the new addresses first, then the owner's own servers.
    page.goto(f"{base}/dashboard/keys/{seeded.production}")
    rows = page.locator("#after-report tbody tr")
    shown = [" ".join(r.split()) for r in rows.all_inner_texts()]
    assert [r.split()[0] for r in shown[:2]] == sorted(NEW, key=lambda a: -sum(week.after[a]))
    assert all("New address" in r for r in shown[:2])
    assert sorted(r.split()[0] for r in shown[2:]) == sorted(OWN)
    assert all("Used it before the report" in r for r in shown[2:])
    for row in shown:
        address = row.split()[0]
        numbers = [int(n.replace(",", "")) for n in row.split() if n.replace(",", "").isdigit()]
        assert numbers[:2] == list(week.after[address]), row
    total = f"{week.requests[seeded.production]:,} requests, {week.refused[seeded.production]:,} refused"
    assert page.locator(".traffic dd").first.inner_text() == total
    shots.take(page, "key-leaked")
    shots.element(page.locator("section[aria-labelledby=after-title]"), "use-after-the-report")

    # The rotation step, with the old key's last hour.
    page.get_by_role("link", name="Rotate", exact=True).click()
    page.get_by_role("button", name="Create new key").click()
    page.get_by_role("link", name="I have saved them").click()
    page.get_by_role("heading", name="Rotation in progress").wait_for()
    page.get_by_text("Updated every 10 seconds.").wait_for()
    shots.element(page.locator("section[aria-labelledby=rotation-title]"), "rotation-step")

    phone = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, storage_state=context.storage_state()
    )
    narrow = phone.new_page()
    narrow.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    for path, name in (
        ("/dashboard/keys", "phone-keys"),
        (f"/dashboard/keys/{seeded.production}", "phone-key-leaked"),
        (f"/dashboard/keys/{seeded.staging}", "phone-key-traffic"),
        ("/dashboard/activity", "phone-activity"),
    ):
        narrow.goto(f"{base}{path}")
        assert narrow.evaluate("document.documentElement.scrollWidth") <= 390, name
        shots.take(narrow, name)
    phone.close()
    context.close()
    assert problems == []
