"""Key traffic in the dashboard: the key page's charts and addresses, use after a leak report, the keys
list's figures and Unused marks, the live JSON of a rotation, and the Activity page.

In-process on SQLite and PostgreSQL. Requests go through the real API (``/v1/whoami``) from the
addresses a test names (``X-Forwarded-For`` behind a trusted loopback proxy), and are written by
the app's own flush; every expected count is the number of requests the test sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from partner_endpoint.services.accounts import AccountService
from partner_endpoint.settings import LeakPolicy
from partner_endpoint.store import activity
from partner_endpoint.store.activity import Actor
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.secretbox import SecretBox
from tests.partner_endpoint.test_dashboard_security import EXPECTED_CSP, INLINE
from tests.support.api_auth import bearer
from tests.support.dashboard import (
    PREFIX,
    Browser,
    Mailbox,
    form_of,
    page_text,
    revealed,
    table_rows,
    text_of,
)
from tests.support.partner import Clock, Issued, add_key, report_leak

LEAK_URL = "https://github.com/acme/shop/blob/main/.env"


def signed_in_with_key(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], label: str = "production"
) -> tuple[Browser, Issued]:
    """owner@example.com signed in, with one key; the browser's app also serves the test's API calls,
    from any address it names (the loopback proxy's ``X-Forwarded-For``). One app, so a revocation
    is seen at once."""
    browser = open_browser(trusted_proxy_header="X-Forwarded-For")
    issued = issue(email="owner@example.com", label=label)
    browser.sign_in("owner@example.com")
    return browser, issued


def reported(engine: Engine, issued: Issued, clock: Clock, policy: LeakPolicy = "flag") -> None:
    """GitHub reports the key at :data:`LEAK_URL`, now."""
    report_leak(engine, issued.api_key, clock, url=LEAK_URL, source="commit", policy=policy, sender="s@x.org")


def call(browser: Browser, api_key: str, address: str, times: int) -> list[int]:
    """``times`` requests with ``api_key`` from ``address``: their statuses."""
    headers = bearer(api_key) | {"X-Forwarded-For": address}
    return [browser.client.get("/v1/whoami", headers=headers).status_code for _ in range(times)]


def flush(browser: Browser) -> None:
    """Write what the app counted now (it does so in the background every flush interval)."""
    browser.client.portal.call(browser.client.app.state.flush_traffic)


def facts(page: str) -> dict[str, str]:
    """A page's ``<dt>``/``<dd>`` pairs, as text."""
    pairs = re.findall(r"<dt>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", page, re.DOTALL)
    return {page_text(k): page_text(v) for k, v in pairs}


# --- the key page --------------------------------------------------------------------------------


def test_the_key_page_shows_exactly_the_requests_sent(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], clock: Clock
) -> None:
    browser, issued = signed_in_with_key(open_browser, issue, "production-server")
    empty = browser.get(f"{PREFIX}/keys/{issued.key_id}").text
    assert "No requests in the last 7 days" in empty and "This key has never been used." in empty
    assert 'id="top-addresses"' not in empty and "<svg" not in empty.split("Traffic", 1)[1]

    assert call(browser, issued.api_key, "203.0.113.9", 5) == [200] * 5
    assert call(browser, issued.api_key, "198.51.100.7", 3) == [200] * 3
    assert call(browser, issued.api_key, "2001:db8:1:2::5", 2) == [200] * 2  # counted as its /64
    clock.advance(5 * 60)
    assert call(browser, issued.api_key, "203.0.113.9", 1) == [200]
    flush(browser)
    assert browser.end(issued.key_id, "revoke").status_code == 303
    assert call(browser, issued.api_key, "198.51.100.7", 2) == [401] * 2
    assert call(browser, issued.api_key, "192.0.2.1", 4) == [401] * 4
    flush(browser)

    page = browser.get(f"{PREFIX}/keys/{issued.key_id}").text
    shown = facts(page)
    assert shown["Last 7 days"] == "11 requests, 6 refused"
    assert shown["Last hour"] == "11 requests, 6 refused"
    assert shown["Addresses, last 7 days"] == "4"
    assert table_rows(page, "top-addresses") == [
        ["203.0.113.9", "6", "0", "5 minutes ago", "just now"],
        ["198.51.100.7", "3", "2", "5 minutes ago", "just now"],
        ["2001:db8:1:2::/64", "2", "0", "5 minutes ago", "5 minutes ago"],
        ["192.0.2.1", "0", "4", "just now", "just now"],
    ]
    # The charts' text equivalents: the hour of 12:00, the minutes 12:00 and 12:05 (UTC).
    assert table_rows(page, "week-chart-numbers") == [["Thu 26 Nov, 12:00", "11", "6"]]
    assert table_rows(page, "hour-chart-numbers") == [["12:00", "10", "0"], ["12:05", "1", "6"]]
    assert (
        'aria-label="Requests per minute, last hour: 11 requests, 6 refused. '
        'The busiest minute, 12:00 UTC, had 10 requests."' in page
    )
    assert page.count('<g class="bar">') == 168 + 60
    # A key with no leak report has no "use after the report".
    assert "Use after the report" not in page

    # The keys list: the day's requests and refusals beside the key.
    listing = browser.get(f"{PREFIX}/keys").text
    (row,) = table_rows(listing, "key-list")
    assert row[4] == "11 requests 6 refused"


def test_the_keys_list_counts_the_current_hour_and_the_23_before_it(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], clock: Clock
) -> None:
    browser, issued = signed_in_with_key(open_browser, issue)
    assert call(browser, issued.api_key, "203.0.113.9", 3) == [200] * 3  # at 12:00
    flush(browser)

    def last_day() -> str:
        (row,) = table_rows(browser.get(f"{PREFIX}/keys").text, "key-list")
        return row[4]

    clock.advance((23 * 60 + 59) * 60)  # 11:59 the next day: 12:00 is 23 hours back
    browser.sign_in("owner@example.com")  # the session ended meanwhile
    assert last_day() == "3 requests"
    clock.advance(60)  # 12:00: that hour has left the day
    assert call(browser, issued.api_key, "203.0.113.9", 2) == [200] * 2
    flush(browser)
    assert last_day() == "2 requests"


def test_the_rotation_step_follows_the_old_keys_traffic(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], clock: Clock
) -> None:
    browser, old = signed_in_with_key(open_browser, issue, "production-server")
    call(browser, old.api_key, "203.0.113.9", 3)
    flush(browser)
    clock.advance(2 * 60)
    rotate_path = f"{PREFIX}/keys/{old.key_id}/rotate"
    rotate_page = browser.get(rotate_path).text
    live = f'data-traffic="{PREFIX}/keys/{old.key_id}/traffic"'
    assert live in rotate_page
    assert "Last request 2 minutes ago Requests in the last hour 3" in page_text(rotate_page)
    reveal = browser.post(rotate_path, form_of(rotate_page, rotate_path))
    new_key = revealed(reveal.text, "api-key")
    new_id = int(browser.client.get("/v1/whoami", headers=bearer(new_key)).json()["key_id"])

    call(browser, old.api_key, "203.0.113.9", 2)
    flush(browser)
    for path in (f"{PREFIX}/keys/{old.key_id}", f"{PREFIX}/keys/{new_id}"):  # the step, and the note
        page = browser.get(path).text
        assert live in page and 'aria-live="polite"' in page, path
        assert "Last request just now Requests in the last hour 5" in page_text(page), path
    # What the page's script reads every few seconds: the same figures, as JSON.
    figures = browser.get(f"{PREFIX}/keys/{old.key_id}/traffic")
    assert figures.status_code == 200 and figures.headers["content-type"] == "application/json"
    assert figures.json() == {
        "key_id": old.key_id,
        "last_used_at": clock.now().isoformat(),
        "last_used": "just now",
        "last_hour": 5,
        "at": clock.now().isoformat(),
    }
    clock.advance(61 * 60)  # an hour without a request: the owner sees it reach zero
    browser.sign_in("owner@example.com")
    later = browser.get(f"{PREFIX}/keys/{old.key_id}/traffic").json()
    assert (later["last_used"], later["last_hour"]) == ("1 hour ago", 0)


def test_the_traffic_json_is_only_for_the_keys_owner(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued]
) -> None:
    mine, theirs = issue(email="owner@example.com"), issue(email="other@example.com")
    anonymous = open_browser()
    to_sign_in = anonymous.get(f"{PREFIX}/keys/{mine.key_id}/traffic")
    assert to_sign_in.status_code == 303 and to_sign_in.headers["location"].startswith(f"{PREFIX}/sign-in")
    me = open_browser()
    me.sign_in("owner@example.com")
    own = me.get(f"{PREFIX}/keys/{mine.key_id}/traffic")
    assert own.status_code == 200 and own.json()["last_used"] == "never"
    assert own.headers["cache-control"] == "no-store"
    assert own.headers["content-security-policy"] == EXPECTED_CSP
    assert own.headers["x-content-type-options"] == "nosniff"
    for key_id in (theirs.key_id, 999999, "x"):
        refused = me.get(f"{PREFIX}/keys/{key_id}/traffic")
        assert refused.status_code == 404 and "other@example.com" not in refused.text
    assert me.end(mine.key_id, "delete").status_code == 303
    assert me.get(f"{PREFIX}/keys/{mine.key_id}/traffic").status_code == 404


# --- use after the report ---------------------------------------------------------------------------


def test_use_after_the_report_puts_new_addresses_first_and_mails_the_owner(
    open_browser: Callable[..., Browser],
    issue: Callable[..., Issued],
    clock: Clock,
    engine: Engine,
    mailbox: Mailbox,
) -> None:
    browser, issued = signed_in_with_key(open_browser, issue, "production-server")
    assert call(browser, issued.api_key, "203.0.113.9", 3) == [200] * 3  # the owner's own server
    flush(browser)
    clock.advance(2 * 3600)
    reported(engine, issued, clock)
    (notice,) = mailbox.deliver()
    assert "was leaked" in str(notice["Subject"])

    clock.advance(10 * 60)
    assert call(browser, issued.api_key, "203.0.113.9", 2) == [200] * 2  # flagged: it still works
    assert call(browser, issued.api_key, "198.51.100.7", 4) == [200] * 4
    flush(browser)
    (followup,) = mailbox.deliver()
    assert str(followup["Subject"]) == (
        'Your leaked Soundpiece API key "production-server" was used from a new address'
    )
    assert "198.51.100.7, first at 2026-11-26 14:10 UTC" in text_of(followup)
    assert "203.0.113.9" not in text_of(followup)

    browser.sign_in("owner@example.com")  # the session ended while the clock moved on
    assert browser.end(issued.key_id, "revoke").status_code == 303
    clock.advance(10 * 60)
    assert call(browser, issued.api_key, "198.51.100.7", 1) == [401]
    assert call(browser, issued.api_key, "192.0.2.44", 2) == [401] * 2
    flush(browser)
    assert mailbox.deliver() == []  # one follow-up per leak, however many new addresses after it

    page = browser.get(f"{PREFIX}/keys/{issued.key_id}").text
    after = page[page.index('id="after-title"') :]
    assert page.index('id="after-title"') < page.index('id="traffic-title"')  # before everything else
    assert "6 requests and 3 refused attempts, from 3 addresses" in page_text(after)
    assert "2 new addresses have used or tried this key" in page_text(after)
    assert table_rows(page, "after-report") == [
        ["198.51.100.7 New address", "4", "1", "10 minutes ago", "just now"],
        ["192.0.2.44 New address", "0", "2", "just now", "just now"],
        ["203.0.113.9 Used it before the report", "2", "0", "10 minutes ago", "10 minutes ago"],
    ]
    # The week still counts every request, the 3 before the report too.
    assert facts(page)["Last 7 days"] == "9 requests, 3 refused"

    log = browser.get(f"{PREFIX}/activity").text
    what = [row[1] for row in table_rows(log, "activity-log")]
    assert what[:3] == ["Key revoked", "Signed in", "Mail sent: the leaked key was used from a new address"]
    assert f"Leak reported by GitHub: {LEAK_URL} Found in: commit" in what


def test_a_leaked_key_used_only_by_its_owner_says_so(
    open_browser: Callable[..., Browser],
    issue: Callable[..., Issued],
    clock: Clock,
    engine: Engine,
    mailbox: Mailbox,
) -> None:
    browser, issued = signed_in_with_key(open_browser, issue)
    reported(engine, issued, clock, "revoke")
    quiet = browser.get(f"{PREFIX}/keys/{issued.key_id}").text
    assert "No request with this key, accepted or refused, since the report." in quiet
    assert 'class="panel after-report"' in quiet  # not the alarm: nothing new used it
    call(browser, issued.api_key, "203.0.113.9", 1)
    flush(browser)
    assert [m["Subject"] for m in mailbox.deliver() if "new address" in str(m["Subject"])] == [
        'Your leaked Soundpiece API key "production" was tried (and refused) from a new address'
    ]
    tried = browser.get(f"{PREFIX}/keys/{issued.key_id}").text
    assert 'class="panel after-report alarm"' in tried
    assert "1 new address has tried this key" in page_text(tried)


def test_addresses_counted_together_past_the_bound_are_named_so(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], clock: Clock, engine: Engine
) -> None:
    """Past its bound a process counts a key's further addresses as one, ``other``: the page says so,
    and does not call them a new address (nor the owner's)."""
    browser = open_browser(trusted_proxy_header="X-Forwarded-For", traffic_max_pairs=1000)
    issued = issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    reported(engine, issued, clock)
    call(browser, issued.api_key, "203.0.113.9", 2)
    for i in range(999):  # the bound's 1,000 (key, address, minute) counts, with the one above
        call(browser, issued.api_key, f"10.0.{i // 256}.{i % 256}", 1)
    call(browser, issued.api_key, "198.51.100.7", 3)  # past the bound
    flush(browser)
    page = browser.get(f"{PREFIX}/keys/{issued.key_id}").text
    other = "Other addresses (more than we count one by one, counted together)"
    assert [row[:2] for row in table_rows(page, "top-addresses")][:3] == [
        [other, "3"],
        ["203.0.113.9", "2"],
        ["10.0.0.0", "1"],
    ]
    assert [row[0] for row in table_rows(page, "after-report")][:2] == [other, "203.0.113.9 New address"]
    assert "from 1,000 addresses and more." in page_text(page)  # "other" is not counted as one
    assert "1,000 new addresses have used or tried this key" in page_text(page)


# --- the keys list ----------------------------------------------------------------------------------


def test_keys_without_a_request_in_30_days_are_marked_unused(
    open_browser: Callable[..., Browser],
    issue: Callable[..., Issued],
    clock: Clock,
    engine: Engine,
    box: SecretBox,
) -> None:
    browser = open_browser(trusted_proxy_header="X-Forwarded-For")
    used = issue(email="owner@example.com", label="used-then-quiet")
    with write_transaction(engine) as conn:
        add_key(conn, box, used.account_id, "never-used", clock.now())
        busy = add_key(conn, box, used.account_id, "busy", clock.now())
    call(browser, used.api_key, "203.0.113.9", 1)
    flush(browser)

    def marked() -> dict[str, bool]:
        browser.sign_in("owner@example.com")  # sessions last 12 hours: a new one after each jump
        rows = table_rows(browser.get(f"{PREFIX}/keys").text, "key-list")
        return {row[0]: "Unused" in row[5] for row in rows}

    clock.advance(29 * 86400)
    assert marked() == {"used-then-quiet": False, "never-used": False, "busy": False}
    clock.advance(2 * 86400)
    call(browser, busy.api_key, "203.0.113.9", 1)
    flush(browser)
    with write_transaction(engine) as conn:
        add_key(conn, box, used.account_id, "brand-new", clock.now())
    assert marked() == {"brand-new": False, "busy": False, "used-then-quiet": True, "never-used": True}
    page = browser.get(f"{PREFIX}/keys").text
    assert "Unused: no requests in 30 days" in page_text(page)


# --- the activity log -----------------------------------------------------------------------------


def test_the_activity_page_is_newest_first_paged_and_the_accounts_own(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], clock: Clock, engine: Engine
) -> None:
    mine, theirs = issue(email="owner@example.com"), issue(email="other@example.com")
    with write_transaction(engine) as conn:
        for i in range(60):
            at = clock.now() - timedelta(hours=100 - i)
            activity.record(conn, mine.account_id, "key_revoked", at, Actor(f"mine-{i:02d}@example.com"))
            activity.record(conn, theirs.account_id, "key_revoked", at, Actor("theirs@example.com"))
    browser = open_browser()
    browser.sign_in("owner@example.com")  # the 61st entry, the newest
    first = browser.get(f"{PREFIX}/activity")
    assert first.status_code == 200
    rows = table_rows(first.text, "activity-log")
    assert len(rows) == 50
    assert rows[0][1:4] == ["Signed in", "—", "owner@example.com"]
    assert [r[3] for r in rows[1:]] == [f"mine-{i:02d}@example.com" for i in range(59, 10, -1)]
    assert "Showing 1–50 of 61" in page_text(first.text)
    assert f'href="{PREFIX}/activity?page=2" rel="next">Older' in first.text
    second = browser.get(f"{PREFIX}/activity?page=2").text
    assert [r[3] for r in table_rows(second, "activity-log")] == [
        f"mine-{i:02d}@example.com" for i in range(10, -1, -1)
    ]
    assert f'href="{PREFIX}/activity?page=1" rel="prev">Newer' in second
    assert table_rows(browser.get(f"{PREFIX}/activity?page=99").text, "activity-log") == table_rows(
        second, "activity-log"
    )
    for page in (first.text, second):
        assert "theirs@example.com" not in page and "other@example.com" not in page
    # The other owner sees theirs only, and cannot page into mine.
    other = open_browser()
    other.sign_in("other@example.com")
    for number in (1, 2, 3):
        shown = other.get(f"{PREFIX}/activity?page={number}").text
        assert "mine-" not in shown and "owner@example.com" not in shown


def test_activity_entries_read_as_sentences(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], clock: Clock, engine: Engine
) -> None:
    issued = issue(email="owner@example.com", label="first")
    browser = open_browser(client=("198.51.100.20", 1))
    browser.sign_in("owner@example.com")
    AccountService(engine, clock).allow(issued.account_id, ["10.0.0.0/8"])
    rotate_path = f"{PREFIX}/keys/{issued.key_id}/rotate"
    browser.post(rotate_path, browser.form(rotate_path, rotate_path))
    reported(engine, issued, clock)
    assert browser.end(issued.key_id, "delete").status_code == 303
    rows = table_rows(browser.get(f"{PREFIX}/activity").text, "activity-log")
    suffix = issued.api_key[-4:]
    assert [r[1:] for r in rows] == [
        ["Key deleted", f"first spk_…{suffix} (deleted)", "owner@example.com", "198.51.100.20"],
        [
            f"Leak reported by GitHub: {LEAK_URL} Found in: commit",
            f"first spk_…{suffix} (deleted)",
            "GitHub",
            "—",
        ],
        [
            f"Key rotated Replaces first spk_…{suffix} (deleted)",
            rows[2][2],  # the new key, by its label and last four
            "owner@example.com",
            "198.51.100.20",
        ],
        ["IP allowlist changed added 10.0.0.0/8", "—", "Soundpiece operator", "—"],
        ["Signed in", "—", "owner@example.com", "198.51.100.20"],
    ]
    assert rows[2][2].startswith("first spk_…") and "(deleted)" not in rows[2][2]


# --- the pages' markup ------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_traffic_pages_have_no_inline_code_and_send_the_security_headers(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], clock: Clock, engine: Engine
) -> None:
    browser, issued = signed_in_with_key(open_browser, issue)
    call(browser, issued.api_key, "203.0.113.9", 2)
    reported(engine, issued, clock)
    call(browser, issued.api_key, "198.51.100.7", 2)
    flush(browser)
    rotate_path = f"{PREFIX}/keys/{issued.key_id}/rotate"
    reveal = browser.post(rotate_path, browser.form(rotate_path, rotate_path))
    new_key = revealed(reveal.text, "api-key")
    new_id = int(browser.client.get("/v1/whoami", headers=bearer(new_key)).json()["key_id"])
    paths = [
        "/keys",
        f"/keys/{issued.key_id}",
        f"/keys/{issued.key_id}/rotate",
        f"/keys/{new_id}",
        "/activity",
    ]
    for path in paths:
        page = browser.get(f"{PREFIX}{path}")
        assert page.status_code == 200, path
        assert page.headers["content-security-policy"] == EXPECTED_CSP
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"
        assert not INLINE.search(page.text), (path, INLINE.search(page.text))
    leaked = browser.get(f"{PREFIX}/keys/{issued.key_id}").text
    assert "<svg" in leaked and "Use after the report" in leaked and "Rotation in progress" in leaked
