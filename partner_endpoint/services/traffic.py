"""Key traffic: what every process counted, added up; what the pages and reports show of it; and the
follow-up an owner gets when a leaked key is used, or tried, from an address new to it.

The counting is :mod:`partner_endpoint.api.traffic`'s, on the hot path; this service writes it in
the background, in one transaction per flush with the follow-up mails it calls for, and reads it
for the dashboard and the command line. Addresses are counted as the allowlist reads them: an
IPv4 address, or an IPv6 /64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine

from partner_endpoint.api.traffic import OTHER, Snapshot
from partner_endpoint.clock import Clock
from partner_endpoint.mail import leak_followup
from partner_endpoint.settings import Settings
from partner_endpoint.store import leaks, outbox, traffic
from partner_endpoint.store.db import read_transaction, write_transaction
from partner_endpoint.store.traffic import AddressUse, Point, hour_of, minute_of

BEFORE_REPORT = timedelta(days=7)
"""An address that used a key in this span before its leak was reported is the owner's own."""
RECENT_HOURS = 24
"""The keys list's "Last 24 h": the current hour and the 23 before it."""
UNUSED_AFTER = timedelta(days=30)
WEEK_HOURS = 168
"""The key page's week: the current hour and the 167 before it, one bar each."""
HOUR_MINUTES = 60
"""The key page's last hour: the current minute and the 59 before it, one bar each."""


@dataclass(frozen=True, slots=True)
class KeyTraffic:
    """What a key's page shows: the week by hour, the last hour by minute, who used it."""

    hours: list[Point]
    """Hours with requests, from ``week_from`` (the ones without have no point)."""
    minutes: list[Point]
    """Minutes with requests, from ``hour_from``."""
    addresses: list[AddressUse]
    last_hour: int
    """Requests (accepted) in the minutes from ``hour_from``."""
    week_from: datetime
    """The first of the :data:`WEEK_HOURS` hours shown (the current one is the last)."""
    hour_from: datetime
    """The first of the :data:`HOUR_MINUTES` minutes shown (the current one is the last)."""


@dataclass(frozen=True, slots=True)
class AfterUse:
    """One address's use of a leaked key after its report."""

    use: AddressUse
    seen_before_report: bool
    """It used the key in the 7 days before the report: most likely the owner's own."""


@dataclass(frozen=True, slots=True)
class AfterReport:
    reported_at: datetime
    requests: int
    refused: int
    addresses: list[AfterUse]
    """New addresses first, then by requests."""


def _nothing() -> None:
    return None


class TrafficService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        sender: str,
        minutes_kept: timedelta,
        hours_kept: timedelta,
        mail_queued: Callable[[], None] = _nothing,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._sender = sender
        self._minutes_kept = minutes_kept
        self._hours_kept = hours_kept
        self._mail_queued = mail_queued

    @classmethod
    def from_settings(
        cls, engine: Engine, settings: Settings, clock: Clock, *, mail_queued: Callable[[], None] = _nothing
    ) -> TrafficService:
        return cls(
            engine,
            clock,
            sender=settings.mail_from,
            minutes_kept=timedelta(seconds=settings.traffic_minutes_kept),
            hours_kept=timedelta(seconds=settings.traffic_hours_kept),
            mail_queued=mail_queued,
        )

    # --- writing ----------------------------------------------------------------------------------

    def write(self, snapshot: Snapshot) -> None:
        """Add one process's counts, and queue the follow-ups they call for, in one transaction."""
        with write_transaction(self._engine) as conn:
            traffic.add(conn, snapshot.cells, snapshot.uses())
            mails = self._follow_ups(conn, snapshot.cells)
            if mails:
                outbox.enqueue(conn, mails, sender=self._sender, now=self._clock.now())
        if mails:
            self._mail_queued()

    def _follow_ups(self, conn: Connection, counts: traffic.Counts) -> list[outbox.NewMail]:
        """A letter for each leaked key first used or tried from a new address after its report.

        Queued at most once per leak (the outbox refuses a second letter with its identity)."""
        reports = leaks.first_reports(conn, sorted({key_id for key_id, _address, _minute in counts}))
        # A leak's follow-up is sent once: a key still used after it went out costs no more queries.
        sent = outbox.queued(conn, [leak_followup.identity(r) for r in reports.values()])
        reports = {k: r for k, r in reports.items() if leak_followup.identity(r) not in sent}
        if not reports:
            return []
        # One pass over the window's cells for every reported key (not one pass per key: a window of
        # 100,000 cells with 1,000 leaked keys in it took 9 s).
        cells_of: dict[int, list[tuple[str, Sequence[float]]]] = {key_id: [] for key_id in reports}
        for (key, address, _minute), cell in counts.items():
            if key in cells_of and address != OTHER:
                cells_of[key].append((address, cell))
        mails = []
        for key_id, report in reports.items():
            reported = report.first_seen.timestamp()
            after = [
                (first, address, requests)
                for address, (requests, _refused, first, last) in cells_of[key_id]
                if last >= reported
            ]
            if not after:
                continue
            known = traffic.addresses_before(conn, key_id, report.first_seen, BEFORE_REPORT)
            new = sorted(use for use in after if use[1] not in known)
            if new:
                first, address, requests = new[0]
                others = len({use[1] for use in new}) - 1
                first_at = datetime.fromtimestamp(first, UTC)
                mails.append(leak_followup.letter(report, address, first_at, others, requests == 0))
        return mails

    def prune(self) -> None:
        with write_transaction(self._engine) as conn:
            traffic.prune(conn, self._clock.now(), self._minutes_kept, self._hours_kept)

    # --- reading ----------------------------------------------------------------------------------

    def of_key(self, key_id: int) -> KeyTraffic:
        with read_transaction(self._engine) as conn:
            return key_traffic(conn, key_id, self._clock.now())

    def recent(self, key_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(requests, refused) in the current hour and the 23 before it per key, for the keys list."""
        since = hour_of(self._clock.now()) - timedelta(hours=RECENT_HOURS - 1)
        with read_transaction(self._engine) as conn:
            return dict(traffic.recent_totals(conn, key_ids, since))

    def after_report(self, key_id: int) -> AfterReport | None:
        """Use of a leaked key since its first report (None if it was never reported)."""
        with read_transaction(self._engine) as conn:
            report = leaks.first_reports(conn, [key_id]).get(key_id)
            return None if report is None else use_after_report(conn, key_id, report.first_seen)

    def usage(self, key_id: int, since: datetime) -> tuple[list[AddressUse], list[Point]]:
        """By address and by hour since ``since`` (``keys usage``)."""
        with read_transaction(self._engine) as conn:
            return traffic.by_address(conn, key_id, since), traffic.per_hour(conn, key_id, since)


# --- reading, in the caller's transaction (a page reads all it shows in one) -------------------------


def key_traffic(conn: Connection, key_id: int, now: datetime) -> KeyTraffic:
    """The week in whole hours and the last hour in whole minutes, each ending with ``now``'s (so a
    chart's bars and the totals beside it count the same requests)."""
    week_from = hour_of(now) - timedelta(hours=WEEK_HOURS - 1)
    hour_from = minute_of(now) - timedelta(minutes=HOUR_MINUTES - 1)
    hours = traffic.per_hour(conn, key_id, week_from)
    minutes = traffic.per_minute(conn, key_id, hour_from)
    addresses = traffic.by_address(conn, key_id, week_from, limit=10)
    return KeyTraffic(hours, minutes, addresses, sum(p.requests for p in minutes), week_from, hour_from)


def use_after_report(conn: Connection, key_id: int, reported_at: datetime) -> AfterReport:
    """Use of a leaked key since ``reported_at``, its first report; new addresses first.

    Counted by the hour: the hour of the report counts from its start."""
    uses = [
        AfterUse(use, known)
        for use, known in traffic.since_report(conn, key_id, reported_at, BEFORE_REPORT)
        if use.last_at >= reported_at
    ]
    uses.sort(key=lambda a: (a.seen_before_report, -a.use.requests - a.use.refused, a.use.address))
    return AfterReport(
        reported_at,
        sum(a.use.requests for a in uses),
        sum(a.use.refused for a in uses),
        uses,
    )
