"""Per-key traffic and the follow-up to a leak, through HTTP: counted exactly, refused attempts apart,
bounded in memory, pruned, and a leaked key used or tried from a new address mails its owner once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_string, policy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, event, func, insert, select

from partner_endpoint.api.traffic import OTHER, TrafficRecorder
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.services.keys import KeyService
from partner_endpoint.services.traffic import TrafficService
from partner_endpoint.store import leaks as leaks_store
from partner_endpoint.store import traffic as traffic_store
from partner_endpoint.store.models import key_traffic_hours, key_traffic_minutes, mail_outbox
from partner_endpoint.store.secretbox import SecretBox
from tests.support.api_auth import bearer
from tests.support.partner import Clock, Issued, TestClient, report_leak, rows, scrape

FORWARDED = "X-Forwarded-For"


def from_address(client: TestClient, key: str, address: str) -> int:
    """One request with ``key`` from ``address``, through the trusted proxy on loopback."""
    headers = bearer(key) | {FORWARDED: address}
    return int(client.get("/v1/whoami", headers=headers).status_code)


def flush(client: TestClient) -> None:
    client.portal.call(client.app.state.flush_traffic)


def by_address(engine: Engine, key_id: int) -> dict[str, tuple[int, int]]:
    return {
        r["address"]: (r["requests"], r["refused"])
        for r in rows(engine, key_traffic_hours)
        if r["key_id"] == key_id
    }


@pytest.fixture
def proxied(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(client=("127.0.0.1", 1), trusted_proxy_header=FORWARDED)


def test_requests_and_refused_attempts_are_counted_per_address_and_minute(
    proxied: TestClient, engine: Engine, issue: Callable[..., Issued], box: SecretBox, clock: Clock
) -> None:
    issued = issue()
    sent: Counter[str] = Counter()
    for i, address in enumerate(["203.0.113.9", "2001:db8:1:2::7", "2001:db8:1:2::8", "198.51.100.4"] * 3):
        assert from_address(proxied, issued.api_key, address) == 200
        sent["2001:db8:1:2::/64" if ":" in address else address] += 1
        if i == 5:
            clock.advance(60)  # a second minute
    flush(proxied)
    KeyService(engine, box, clock).revoke(issued.key_id)
    proxied.app.state.key_directory.key_changed(issued.key_id)
    assert from_address(proxied, issued.api_key, "192.0.2.66") == 401
    assert from_address(proxied, issued.api_key, "192.0.2.66") == 401
    assert from_address(proxied, "spk_" + "x" * 38, "192.0.2.67") == 401  # no key: nothing to count
    flush(proxied)
    assert by_address(engine, issued.key_id) == {a: (n, 0) for a, n in sent.items()} | {"192.0.2.66": (0, 2)}
    minutes = sorted((r["minute"], r["requests"], r["refused"]) for r in rows(engine, key_traffic_minutes))
    assert [(n, r) for _m, n, r in minutes] == [(6, 0), (6, 2)]
    assert minutes[1][0] - minutes[0][0] == 1  # minutes since the epoch
    last = rows(engine, key_traffic_hours)
    assert max(r["last_at"] for r in last) == clock.now().timestamp()  # seconds since the epoch
    shown = TrafficService(
        engine, clock, sender="s@x.test", minutes_kept=timedelta(days=1), hours_kept=timedelta(days=90)
    ).of_key(issued.key_id)
    assert [(p.at, p.requests, p.refused) for p in shown.minutes] == [
        (clock.now().replace(second=0) - timedelta(minutes=1), 6, 0),
        (clock.now().replace(second=0), 6, 2),
    ]
    assert [(p.requests, p.refused) for p in shown.hours] == [(12, 2)] and shown.last_hour == 12


def test_past_its_bound_a_process_counts_the_rest_as_other_and_says_so(
    make_client: Callable[..., TestClient], engine: Engine, issue: Callable[..., Issued]
) -> None:
    client = make_client(client=("127.0.0.1", 1), trusted_proxy_header=FORWARDED, traffic_max_pairs=1000)
    issued = issue()
    addresses = [f"10.{i // 250}.{i % 250}.1" for i in range(1500)]
    for address in addresses:
        assert from_address(client, issued.api_key, address) == 200
    flush(client)
    counted = by_address(engine, issued.key_id)
    assert len(counted) == 1001 and counted[OTHER] == (500, 0)
    assert sum(n for n, _r in counted.values()) == 1500  # exact in total, whatever the bound
    assert "soundpiece_traffic_overflow_total 500.0" in scrape(client)


def test_nothing_is_written_on_the_request_path_and_a_failed_write_is_kept(
    proxied: TestClient, engine: Engine, issue: Callable[..., Issued]
) -> None:
    issued = issue()
    for _ in range(3):
        from_address(proxied, issued.api_key, "203.0.113.9")
    assert rows(engine, key_traffic_hours) == []
    flush(proxied)
    flush(proxied)  # nothing new: nothing added twice
    assert by_address(engine, issued.key_id) == {"203.0.113.9": (3, 0)}


def test_old_minutes_and_hours_are_pruned(
    proxied: TestClient, engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    issued = issue()
    from_address(proxied, issued.api_key, "203.0.113.9")
    flush(proxied)
    service = TrafficService(
        engine, clock, sender="s@x.test", minutes_kept=timedelta(days=1), hours_kept=timedelta(days=90)
    )
    clock.advance(2 * 86400)
    service.prune()
    assert rows(engine, key_traffic_minutes) == [] and len(rows(engine, key_traffic_hours)) == 1
    clock.advance(90 * 86400)
    service.prune()
    assert rows(engine, key_traffic_hours) == []


# --- the follow-up to a leak --------------------------------------------------------------------


def followups(engine: Engine) -> list[dict[str, Any]]:
    return [r for r in rows(engine, mail_outbox) if r["kind"] == "leak_followup"]


@pytest.mark.parametrize("policy", ["flag", "revoke"])
def test_a_leaked_key_used_from_a_new_address_mails_its_owner_once(
    make_client: Callable[..., TestClient],
    engine: Engine,
    issue: Callable[..., Issued],
    clock: Clock,
    policy: str,
    mailbox: Any,
) -> None:
    client = make_client(client=("127.0.0.1", 1), trusted_proxy_header=FORWARDED, leak_policy=policy)
    issued = issue(label="payments")
    from_address(client, issued.api_key, "203.0.113.9")  # the owner's own server, before the leak
    flush(client)
    clock.advance(3600)
    report_leak(
        engine, issued.api_key, clock, url="https://x/y", source="commit", policy=policy, sender="s@x"
    )
    client.app.state.key_directory.key_changed(issued.key_id)
    clock.advance(60)
    from_address(client, issued.api_key, "203.0.113.9")  # the owner's server goes on: no follow-up
    flush(client)
    assert followups(engine) == []
    clock.advance(60)
    expected = 200 if policy == "flag" else 401
    assert from_address(client, issued.api_key, "198.51.100.23") == expected  # someone else
    clock.advance(1)
    assert from_address(client, issued.api_key, "192.0.2.200") == expected
    flush(client)
    from_address(client, issued.api_key, "192.0.2.201")
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, ...)
    event.listen(engine, "before_cursor_execute", listener)
    flush(client)
    event.remove(engine, "before_cursor_execute", listener)
    # The follow-up is queued already: who used the key before the report is not asked again.
    assert statements and not [s for s in statements if "DISTINCT" in s.upper()]
    (queued,) = followups(engine)  # one per leak, however many new addresses
    assert queued["key_id"] == issued.key_id
    mail = next(m for m in mailbox.deliver() if "new address" in str(m["Subject"]))
    text = mail.get_body(("plain",)).get_content()
    assert "198.51.100.23" in text and "and 1 more new address" in text
    assert ("was used from" if policy == "flag" else "was tried (and refused) from") in text
    assert issued.api_key not in text


def test_a_request_without_an_address_counts_as_other_and_mails_no_one(
    make_client: Callable[..., TestClient], engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    """A client with no address (a Unix socket; here a peer that is no IP address) is neither the
    owner's own server nor a new address: its use of a leaked key is counted, as "other", and
    starts no follow-up mail."""
    client = make_client(client=("unix-socket-peer", 0), leak_policy="flag")
    issued = issue()
    report_leak(
        engine, issued.api_key, clock, url="https://x/y", source="commit", policy="flag", sender="s@x"
    )
    client.app.state.key_directory.key_changed(issued.key_id)
    clock.advance(60)
    assert client.get("/v1/whoami", headers=bearer(issued.api_key)).status_code == 200
    flush(client)
    assert by_address(engine, issued.key_id) == {OTHER: (1, 0)}
    assert followups(engine) == []


@settings(max_examples=50)
@given(
    events=st.lists(
        st.tuples(
            st.integers(1, 5), st.sampled_from(["a", "b", "c", "d"]), st.booleans(), st.integers(0, 180)
        ),
        max_size=60,
    ),
    bound=st.integers(1, 6),
)
def test_the_recorder_never_loses_or_invents_a_request(
    events: list[tuple[int, str, bool, int]], bound: int
) -> None:
    """Whatever the bound and the order, the counts taken add up to the requests counted, per key
    (or under key 0 past twice the bound), and no more cells are kept than the bound allows."""
    clock = Clock()
    recorder = TrafficRecorder(clock, Metrics(), max_pairs=bound)
    expected: Counter[bool] = Counter()
    minutes = set()
    for key_id, address, refused, wait in events:
        clock.advance(wait)
        recorder.count(key_id, address, refused=refused)
        expected[refused] += 1
        minutes.add(int(clock.now().timestamp() // 60))
    snapshot = recorder.take()
    cells = snapshot.cells.values()
    assert len(snapshot.cells) <= 2 * bound + len(minutes)  # past twice the bound: one cell a minute
    assert sum(c[0] for c in cells) == expected[False]
    assert sum(c[1] for c in cells) == expected[True]
    assert all(c[2] <= c[3] for c in cells)
    assert not recorder.take()  # taken once


def test_minute_rows_are_one_per_key_and_minute_whatever_the_addresses(
    proxied: TestClient, engine: Engine, issue: Callable[..., Issued]
) -> None:
    issued = issue()
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        from_address(proxied, issued.api_key, address)
    flush(proxied)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(key_traffic_minutes)).scalar_one() == 1


def test_a_follow_up_mail_renders_without_the_dashboard(engine: Engine) -> None:
    from partner_endpoint.mail.kinds import KINDS
    from partner_endpoint.mail.letters import MailContext

    data = {
        "recipient": "o@example.com",
        "key_id": 3,
        "label": "web\u202e",
        "key_suffix": "AbC1",
        "reported_at": "2026-12-07T10:00:00+00:00",
        "action": "flagged",
        "address": "198.51.100.23",
        "first_at": "2026-12-07T11:00:00+00:00",
        "others": 0,
        "refused": False,
    }
    message = KINDS["leak_followup"].render(data, MailContext("s@example.com", "https://docs"))
    parsed = message_from_string(message.as_string(), policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "198.51.100.23" in text and "\u202e" not in text and "See it in your dashboard." in text


HOUR_COLUMNS = ("key_id", "hour", "address", "requests", "refused", "first_at", "last_at")
REPORTED = datetime(2026, 11, 20, 10, 25, 30, tzinfo=UTC)
"""A report in the middle of an hour: the hour counts from its start, the 7 days before from theirs."""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows_given=st.dictionaries(
        st.tuples(
            st.integers(-9 * 24, 3 * 24), st.sampled_from(["198.51.100.1", "198.51.100.2", "2001:db8::"])
        ),
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 3599), st.integers(0, 3599)),
        max_size=30,
    )
)
def test_use_since_a_report_answers_both_questions_of_its_hours(
    engine: Engine, rows_given: dict[tuple[int, str], tuple[int, int, int, int]]
) -> None:
    """``since_report``'s one scan against the rows themselves: per address, the sums of the hours
    from the report's on, and whether any row of the 7 days before began before the report."""
    report_hour = int(REPORTED.timestamp()) // 3600
    stored = [
        (
            7,
            report_hour + offset,
            address,
            n,
            r,
            (report_hour + offset) * 3600.0 + min(a, b),
            (report_hour + offset) * 3600.0 + max(a, b),
        )
        for (offset, address), (n, r, a, b) in rows_given.items()
    ]
    with engine.begin() as conn:
        conn.execute(delete(key_traffic_hours))
        if stored:
            conn.execute(
                insert(key_traffic_hours), [dict(zip(HOUR_COLUMNS, row, strict=True)) for row in stored]
            )
        found = {
            use.address: (use, known)
            for use, known in traffic_store.since_report(conn, 7, REPORTED, timedelta(days=7))
        }
    expected = {}
    for address in {row[2] for row in stored}:
        after = [row for row in stored if row[2] == address and row[1] >= report_hour]
        if not after:
            continue
        known = any(
            row[2] == address and row[1] >= report_hour - 7 * 24 and row[5] < REPORTED.timestamp()
            for row in stored
        )
        expected[address] = (
            sum(row[3] for row in after),
            sum(row[4] for row in after),
            min(row[5] for row in after),
            max(row[6] for row in after),
            known,
        )
    assert {
        address: (use.requests, use.refused, use.first_at.timestamp(), use.last_at.timestamp(), known)
        for address, (use, known) in found.items()
    } == expected


def test_use_after_the_report_counts_from_the_first_report_of_a_key_seen_everywhere(
    engine: Engine, box: SecretBox, issue: Callable[..., Issued], clock: Clock
) -> None:
    """A key reported in more places than its page lists still counts from its very first report."""
    issued = issue()
    first = clock.now()
    for n in range(leaks_store.SIGHTINGS_READ + 1):
        report_leak(
            engine, issued.api_key, clock, url=f"https://x/{n}", source="commit", policy="flag", sender="s@x"
        )
        clock.advance(1)
    page = KeyService(engine, box, clock).page(issued.key_id, "owner@example.com")
    assert page is not None and page.after is not None
    assert len(page.sightings) == leaks_store.SIGHTINGS_READ  # the first is not among them
    assert page.after.reported_at == first


def test_the_top_addresses_are_the_busiest_first_and_no_more_than_asked(engine: Engine) -> None:
    hour = int(REPORTED.timestamp()) // 3600
    stored = [(7, hour, f"198.51.100.{n}", n, 0, hour * 3600.0, hour * 3600.0 + 1) for n in range(1, 13)]
    with engine.begin() as conn:
        conn.execute(insert(key_traffic_hours), [dict(zip(HOUR_COLUMNS, row, strict=True)) for row in stored])
        top = traffic_store.by_address(conn, 7, REPORTED - timedelta(hours=1), limit=10)
        every = traffic_store.by_address(conn, 7, REPORTED - timedelta(hours=1))
    assert [u.requests for u in top] == list(range(12, 2, -1))
    assert [u.requests for u in every] == list(range(12, 0, -1))
