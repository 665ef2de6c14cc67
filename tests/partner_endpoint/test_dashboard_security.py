"""The dashboard as a security surface: sign-in links, sessions, cookies, CSRF, isolation, escaping, headers.

In-process (Starlette's TestClient) on SQLite and PostgreSQL; the sign-in link is always read from
the mail the real worker wrote. The browser journey is in tests/browser.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select, text

from partner_endpoint.app import create_app
from partner_endpoint.ops.logs import JsonFormatter
from partner_endpoint.settings import Settings, SettingsError
from partner_endpoint.store.db import make_engine, read_transaction, write_transaction
from partner_endpoint.store.models import api_keys, dashboard_sessions, mail_outbox, sign_in_links
from tests.support.dashboard import (
    PREFIX,
    Browser,
    Mailbox,
    form_of,
    hidden_fields,
    page_text,
    sign_in_link,
    text_of,
)
from tests.support.partner import (
    Clock,
    Issued,
    TestClient,
    every_row,
    report_leak,
    rows,
    scrape,
    start_client,
)
from tests.support.processes import HANG_GUARD, wait_for
from tests.support.services import ON_POSTGRES, ServerProcess, service_env

EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def state(engine: Engine) -> dict[str, Any]:
    """What a refused form must leave as it was."""
    with read_transaction(engine) as conn:
        return {
            "keys": sorted(
                conn.execute(select(api_keys.c.id, api_keys.c.status, api_keys.c.deleted_at)).all()
            ),
            "sessions": sorted(
                conn.execute(select(dashboard_sessions.c.id, dashboard_sessions.c.account_id))
            ),
            "links": sorted(conn.execute(select(sign_in_links.c.id, sign_in_links.c.used_at)).all()),
            "mail": len(conn.execute(select(mail_outbox.c.id)).all()),
        }


# --- sign-in links --------------------------------------------------------------------------------


def test_a_link_signs_in_once(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], mailbox: Mailbox
) -> None:
    browser = open_browser()
    issue(email="owner@example.com")
    assert browser.get(f"{PREFIX}/keys").headers["location"] == f"{PREFIX}/sign-in?next=%2Fdashboard%2Fkeys"
    sent = browser.request_link("owner@example.com")
    assert (sent.status_code, sent.headers["location"]) == (303, f"{PREFIX}/sign-in/sent")
    (message,) = mailbox.deliver()
    assert message["To"] == "owner@example.com"
    assert message["Subject"] == "Your Soundpiece sign-in link"
    link = sign_in_link(message)
    assert link.startswith("http://127.0.0.1:8000/dashboard/sign-in/")
    assert "15 minutes" in text_of(message)
    page = browser.get(link.removeprefix("http://127.0.0.1:8000"))
    fields = form_of(page.text, f"{PREFIX}/sign-in/confirm")
    signed_in = browser.post(f"{PREFIX}/sign-in/confirm", fields)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, f"{PREFIX}/keys")
    assert browser.get(f"{PREFIX}/keys").status_code == 200
    # The same link again, from another browser with a valid form of its own: refused, no session.
    other = open_browser()
    again_fields = form_of(other.get(f"{PREFIX}/sign-in").text, f"{PREFIX}/sign-in") | {
        "token": fields["token"]
    }
    again = other.post(f"{PREFIX}/sign-in/confirm", again_fields)
    assert again.status_code == 400 and "does not work" in again.text
    assert "set-cookie" not in again.headers
    assert other.get(link.removeprefix("http://127.0.0.1:8000")).status_code == 400
    assert other.get(f"{PREFIX}/keys").status_code == 303


def test_the_link_page_says_which_address_it_signs_in_and_which_it_replaces(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], mailbox: Mailbox
) -> None:
    """A link forwarded by someone else must not sign the reader in as that someone unawares."""
    issue(email="owner@example.com")
    issue(email="attacker@example.com")
    open_browser().request_link("attacker@example.com")
    path = urlsplit(sign_in_link(mailbox.deliver()[0])).path
    fresh = page_text(open_browser().get(path).text)
    assert "This link signs you in as attacker@example.com." in fresh
    assert "signed in as" not in fresh.replace("signs you in as", "")
    victim = open_browser()
    victim.sign_in("owner@example.com")
    page = victim.get(path)
    assert page.status_code == 200
    assert (
        "This browser is signed in as owner@example.com. Continuing signs owner@example.com out "
        "and signs you in as attacker@example.com."
    ) in page_text(page.text)


def test_an_expired_link_is_refused(
    browser: Browser, issue: Callable[..., Issued], mailbox: Mailbox, clock: Clock
) -> None:
    issue(email="owner@example.com")
    browser.request_link("owner@example.com")
    path = sign_in_link(mailbox.deliver()[0]).removeprefix("http://127.0.0.1:8000")
    page = browser.get(path)
    fields = form_of(page.text, f"{PREFIX}/sign-in/confirm")
    clock.advance(15 * 60)
    assert browser.get(path).status_code == 400
    refused = browser.post(f"{PREFIX}/sign-in/confirm", fields)
    assert refused.status_code == 400 and "set-cookie" not in refused.headers
    assert browser.get(f"{PREFIX}/keys").status_code == 303


def test_unknown_addresses_get_the_same_answer(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], engine: Engine
) -> None:
    issue(email="owner@example.com")
    answers = []
    for email in ("owner@example.com", "nobody@example.com"):
        response = open_browser().request_link(email)
        answers.append((response.status_code, dict(response.headers), response.text))
    (known_status, known_headers, known_body), (unknown_status, unknown_headers, unknown_body) = answers
    assert known_status == unknown_status == 303
    assert known_headers == unknown_headers
    assert known_body == unknown_body
    assert state(engine)["mail"] == 1  # only the owner gets mail


def test_sign_in_requests_are_rate_limited_per_address_and_per_client(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], clock: Clock, engine: Engine
) -> None:
    issue(email="owner@example.com")
    limits = {"sign_in_limit_per_address": 3, "sign_in_limit_per_client": 5}
    browser = open_browser(**limits)
    assert [browser.request_link("Owner@Example.com").status_code for _ in range(4)] == [303, 303, 303, 429]
    assert state(engine)["mail"] == 3
    # The same answers for an address that owns nothing: the limit says nothing about accounts.
    elsewhere = open_browser(**limits, client=("127.0.0.9", 1))
    assert [elsewhere.request_link("ghost@example.com").status_code for _ in range(4)] == [303, 303, 303, 429]
    # Per client: five requests answered from one address in all, whatever the addresses asked for
    # (the refused fourth above did not count).
    assert [browser.request_link(f"{n}@example.com").status_code for n in ("third", "fourth")] == [303, 303]
    limited = browser.request_link("fifth@example.com")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3600"
    assert "Too many sign-in requests" in limited.text
    clock.advance(3600)
    assert browser.request_link("owner@example.com").status_code == 303
    assert state(engine)["mail"] == 4


def test_a_refused_request_spends_no_budget_and_writes_nothing(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], engine: Engine, mailbox: Mailbox
) -> None:
    """A client over its own limit cannot lock the owner of an address out by asking for that address."""
    issue(email="victim@example.com")
    attacker = open_browser(client=("198.51.100.7", 1))
    for n in range(20):  # the client's whole hour (the default limit), on made-up addresses
        assert attacker.request_link(f"made-up-{n}@example.com").status_code == 303
    before = every_row(engine)
    assert [attacker.request_link("victim@example.com").status_code for _ in range(6)] == [429] * 6
    assert every_row(engine) == before  # not a row added or changed: refusing costs no write
    owner = open_browser(client=("203.0.113.5", 1))
    assert owner.request_link("victim@example.com").status_code == 303
    (message,) = mailbox.deliver()
    assert message["To"] == "victim@example.com"
    # Refused for the address (its five links spent from other clients): nothing written either.
    for n in range(4):
        assert (
            open_browser(client=(f"203.0.113.{10 + n}", 1)).request_link("victim@example.com").status_code
            == 303
        )
    before = every_row(engine)
    assert open_browser(client=("192.0.2.1", 1)).request_link("victim@example.com").status_code == 429
    assert every_row(engine) == before


@ON_POSTGRES  # a table lock: PostgreSQL's
def test_the_answer_does_not_wait_for_the_link_or_its_mail(
    settings: Settings, engine: Engine, issue: Callable[..., Issued], tmp_path: Path
) -> None:
    """An address with an account costs a link and a mail, one without costs neither: were they made
    before the answer, its time would tell who has an account. A real serve answers both at once while
    no mail can be written (mail_outbox locked), and writes the mail once it can."""
    issue(email="owner@example.com")
    env = service_env(
        database_url=settings.database_url,
        secret_key=str(settings.secret_key),
        mail_dir=str(tmp_path / "outbox"),
        mail_worker="off",
    )
    with (
        ServerProcess(env, tmp_path, "serve") as served,
        httpx.Client(base_url=served.url, timeout=10) as client,
    ):
        form = form_of(client.get(f"{PREFIX}/sign-in").text, f"{PREFIX}/sign-in")
        with engine.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE mail_outbox IN EXCLUSIVE MODE"))
            answers = [
                client.post(f"{PREFIX}/sign-in", data=form | {"email": email})
                for email in ("owner@example.com", "nobody@example.com")
            ]
            assert [(a.status_code, a.headers["location"]) for a in answers] == [
                (303, f"{PREFIX}/sign-in/sent")
            ] * 2
            assert state(engine)["mail"] == 0
        wait_for(lambda: state(engine)["mail"] == 1, HANG_GUARD, what="the sign-in mail")


# --- cookies and sessions -------------------------------------------------------------------------


def cookie_attributes(response: Any, name: str) -> set[str]:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return {part.strip().lower() for part in header.split(";")[1:]}


def test_cookie_flags_over_https(
    settings: Settings, engine: Engine, clock: Clock, mailbox: Mailbox, issue: Callable[..., Issued]
) -> None:
    issue(email="owner@example.com")
    secure = dataclasses.replace(settings, dashboard_url="https://dash.example.com/dashboard")
    app = create_app(secure, engine=engine, clock=clock)
    with TestClient(app, base_url="https://testserver", client=("127.0.0.1", 50000)) as client:
        browser = Browser(client, dataclasses.replace(mailbox, settings=secure))
        page = browser.get(f"{PREFIX}/sign-in")
        assert cookie_attributes(page, "__Host-sp_form") == {"httponly", "path=/", "samesite=lax", "secure"}
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        signed_in = browser.sign_in("owner@example.com")
        assert cookie_attributes(signed_in, "__Host-sp_session") == {
            "httponly",
            "path=/",
            "samesite=lax",
            "secure",
            f"max-age={int(settings.session_lifetime)}",
        }
        assert browser.get(f"{PREFIX}/keys").status_code == 200


def test_cookie_flags_on_loopback_http(browser: Browser, issue: Callable[..., Issued]) -> None:
    issue(email="owner@example.com")
    signed_in = browser.sign_in("owner@example.com")
    assert cookie_attributes(signed_in, "sp_session") == {
        "httponly",
        "path=/",
        "samesite=lax",
        "max-age=43200",
    }
    assert "strict-transport-security" not in browser.get(f"{PREFIX}/keys").headers


@pytest.mark.parametrize(
    "url",
    [
        "http://dash.example.com/dashboard",
        "ftp://127.0.0.1/x",
        "https://",
        "https://u:p@h/d",
        "https://h/d?x=1",
    ],
)
def test_dashboard_url_must_be_https_unless_loopback(url: str) -> None:
    with pytest.raises(SettingsError):
        Settings(dashboard_url=url)
    for fine in (
        "http://localhost:8000/dashboard",
        "http://[::1]:8000/dashboard",
        "https://d.example/dashboard",
    ):
        Settings(dashboard_url=fine)


def test_sessions_end_when_idle_and_at_their_lifetime(
    browser: Browser, issue: Callable[..., Issued], clock: Clock, settings: Settings
) -> None:
    issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    clock.advance(settings.session_idle_timeout - 60)
    assert browser.get(f"{PREFIX}/keys").status_code == 200  # activity keeps it alive
    clock.advance(settings.session_idle_timeout - 60)
    assert browser.get(f"{PREFIX}/keys").status_code == 200
    clock.advance(settings.session_idle_timeout + 1)
    assert browser.get(f"{PREFIX}/keys").headers["location"].startswith(f"{PREFIX}/sign-in")

    browser.sign_in("owner@example.com")
    elapsed = 0.0
    while elapsed < settings.session_lifetime - 600:
        clock.advance(600)
        elapsed += 600
        assert browser.get(f"{PREFIX}/keys").status_code == 200
    clock.advance(601)
    assert browser.get(f"{PREFIX}/keys").status_code == 303


@pytest.mark.parametrize("idle", [1.0, 20.0, 59.0, 100.0])
def test_a_session_in_use_outlives_a_short_idle_timeout(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], clock: Clock, idle: float
) -> None:
    """Activity is written often enough for any idle timeout: a page every idle/2 seconds keeps it alive."""
    issue(email="owner@example.com")
    browser = open_browser(session_idle_timeout=idle)
    browser.sign_in("owner@example.com")
    for _ in range(10):  # five idle timeouts in all
        clock.advance(idle / 2)
        assert browser.get(f"{PREFIX}/keys").status_code == 200
    clock.advance(idle)
    assert browser.get(f"{PREFIX}/keys").headers["location"].startswith(f"{PREFIX}/sign-in")


def test_the_live_traffic_figures_do_not_keep_an_idle_session_alive(
    browser: Browser, issue: Callable[..., Issued], clock: Clock, settings: Settings
) -> None:
    """The rotation step's JSON, read every few seconds by a tab left open, is not the owner's activity."""
    issued = issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    traffic = f"{PREFIX}/keys/{issued.key_id}/traffic"
    elapsed = 0.0
    while elapsed < settings.session_idle_timeout - 60:
        clock.advance(30)
        elapsed += 30
        read = browser.get(traffic, headers={"Accept": "application/json"})
        assert read.status_code == 200 and read.json()["key_id"] == issued.key_id
    clock.advance(61)
    assert browser.get(traffic).status_code == 303  # idle since sign-in: the reads did not count
    assert browser.get(f"{PREFIX}/keys").headers["location"].startswith(f"{PREFIX}/sign-in")


def test_sign_out_ends_the_session_on_the_server(
    browser: Browser, issue: Callable[..., Issued], make_client: Callable[..., TestClient], engine: Engine
) -> None:
    issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    stolen = dict(browser.client.cookies)
    page = browser.get(f"{PREFIX}/keys").text
    out = browser.post(f"{PREFIX}/sign-out", form_of(page, f"{PREFIX}/sign-out"))
    assert (out.status_code, out.headers["location"]) == (303, f"{PREFIX}/sign-in?done=signed-out")
    assert state(engine)["sessions"] == []
    replay = make_client()
    replay.cookies.update(stolen)
    for path in ("/keys", "/keys/new", "/keys/1"):
        assert replay.get(f"{PREFIX}{path}", follow_redirects=False).status_code == 303


def test_after_sign_in_only_dashboard_pages(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued]
) -> None:
    issued = issue(email="owner@example.com")
    for wanted, landing in (
        (f"{PREFIX}/keys/{issued.key_id}", f"{PREFIX}/keys/{issued.key_id}"),
        ("https://evil.example/", f"{PREFIX}/keys"),
        ("//evil.example/dashboard/keys", f"{PREFIX}/keys"),
        (f"{PREFIX}/keys/1/../../../x", f"{PREFIX}/keys"),
    ):
        browser = open_browser()
        browser.request_link("owner@example.com", next_path=wanted)
        landed = browser.use_link(sign_in_link(browser.mailbox.deliver()[0]))
        assert landed.headers["location"] == landing


# --- CSRF -----------------------------------------------------------------------------------------


def signed_in_pair(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued]
) -> tuple[Browser, Issued, Browser, Issued]:
    mine, theirs = issue(email="owner@example.com"), issue(email="other@example.com")
    me, them = open_browser(), open_browser()
    me.sign_in("owner@example.com")
    them.sign_in("other@example.com")
    return me, mine, them, theirs


def test_forms_without_their_session_token_change_nothing(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], engine: Engine
) -> None:
    me, mine, them, _theirs = signed_in_pair(open_browser, issue)
    foreign = hidden_fields(them.get(f"{PREFIX}/keys/new").text)["csrf_token"]
    own = me.form(f"{PREFIX}/keys/new", f"{PREFIX}/keys")
    posts = {
        f"{PREFIX}/keys": {"label": "sneaky", "request_id": own["request_id"]},
        f"{PREFIX}/keys/{mine.key_id}/rotate": {"request_id": own["request_id"]},
        f"{PREFIX}/keys/{mine.key_id}/revoke": {},
        f"{PREFIX}/keys/{mine.key_id}/delete": {},
        f"{PREFIX}/sign-out": {},
        f"{PREFIX}/account": {"account_id": str(mine.account_id)},
    }
    last = own["csrf_token"][-1]
    tampered = own["csrf_token"][:-1] + ("1" if last == "0" else "0")  # one hex digit off
    before = state(engine)
    for path, fields in posts.items():
        for token in (None, "", foreign, tampered, "x" * 5000):
            data = fields if token is None else fields | {"csrf_token": token}
            response = me.post(path, data)
            assert response.status_code == 403, (path, token)
            assert "This form has expired" in response.text
        # A valid token from a page another site framed or posted: Fetch Metadata says cross-site.
        cross = me.post(
            path, fields | {"csrf_token": own["csrf_token"]}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross.status_code == 403
    assert state(engine) == before
    assert me.get(f"{PREFIX}/keys").status_code == 200


def test_forms_before_sign_in_need_their_form_cookie(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], engine: Engine, mailbox: Mailbox
) -> None:
    issue(email="owner@example.com")
    victim, attacker = open_browser(), open_browser()
    attacker.request_link("owner@example.com")
    link_path = sign_in_link(mailbox.deliver()[0]).removeprefix("http://127.0.0.1:8000")
    attackers_form = form_of(attacker.get(link_path).text, f"{PREFIX}/sign-in/confirm")
    victim.get(f"{PREFIX}/sign-in")  # the victim has a form cookie of its own
    before = state(engine)
    # Login CSRF: the attacker's own link and form, submitted from the victim's browser.
    assert victim.post(f"{PREFIX}/sign-in/confirm", attackers_form).status_code == 403
    assert victim.post(f"{PREFIX}/sign-in", {"email": "owner@example.com"}).status_code == 403
    cookieless = open_browser()
    assert (
        cookieless.post(f"{PREFIX}/sign-in", {"email": "owner@example.com", "csrf_token": ""}).status_code
        == 403
    )
    assert state(engine) == before
    assert attacker.post(f"{PREFIX}/sign-in/confirm", attackers_form).status_code == 303


# --- isolation ------------------------------------------------------------------------------------


def test_another_accounts_keys_answer_404(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], engine: Engine
) -> None:
    me, mine, _them, theirs = signed_in_pair(open_browser, issue)
    own_token = hidden_fields(me.get(f"{PREFIX}/keys/new").text)["csrf_token"]
    before = state(engine)
    for key_id in (str(theirs.key_id), "0", "999999", "99999999999999999999", "-1", "1e3", "x", "%00"):
        for suffix in ("", "/rotate", "/revoke", "/delete"):
            page = me.get(f"{PREFIX}/keys/{key_id}{suffix}")
            assert page.status_code == 404, (key_id, suffix)
            assert "other@example.com" not in page.text
        for suffix in ("/rotate", "/revoke", "/delete"):
            data = {"csrf_token": own_token, "request_id": "r" * 22}
            assert me.post(f"{PREFIX}/keys/{key_id}{suffix}", data).status_code == 404
    assert state(engine) == before
    assert (
        me.post(
            f"{PREFIX}/account", {"csrf_token": own_token, "account_id": str(theirs.account_id)}
        ).status_code
        == 404
    )
    listed = me.get(f"{PREFIX}/keys").text
    assert f'/keys/{mine.key_id}"' in listed and f'/keys/{theirs.key_id}"' not in listed


def test_opening_a_key_of_the_other_account_does_not_switch_the_session(
    browser: Browser, issue: Callable[..., Issued], engine: Engine
) -> None:
    """Only the account switcher (a POST with its CSRF token) changes the account a session shows: a
    plain GET, even from another site, must not move a create form already loaded to another account."""
    first = issue(email="owner@example.com", label="first-account-key")
    second = issue(email="owner@example.com", label="second-account-key")
    browser.sign_in("owner@example.com")  # shows the first account, the oldest
    create = browser.form(f"{PREFIX}/keys/new", f"{PREFIX}/keys")
    before = state(engine)
    page = browser.get(f"{PREFIX}/keys/{second.key_id}", headers={"Sec-Fetch-Site": "cross-site"})
    assert page.status_code == 200 and "second-account-key" in page.text
    assert state(engine) == before  # the session still shows the first account
    note = page.text[page.text.index("This key belongs to account") :]
    assert note.startswith(f"This key belongs to account {second.account_id}.")
    assert f"You are working in account {first.account_id}" in note
    made = browser.post(f"{PREFIX}/keys", create | {"label": "made-here"})
    assert made.status_code == 200
    assert [k["account_id"] for k in rows(engine, api_keys) if k["label"] == "made-here"] == [
        first.account_id
    ]
    assert "first-account-key" in browser.get(f"{PREFIX}/keys").text
    # The page's own switch form (a POST) switches, and comes back to the key.
    switched = browser.post(f"{PREFIX}/account", form_of(note, f"{PREFIX}/account"))
    assert (switched.status_code, switched.headers["location"]) == (303, f"{PREFIX}/keys/{second.key_id}")
    assert "This key belongs to" not in browser.get(f"{PREFIX}/keys/{second.key_id}").text
    listed = browser.get(f"{PREFIX}/keys").text
    assert "second-account-key" in listed and "first-account-key" not in listed


# --- escaping -------------------------------------------------------------------------------------


def test_labels_urls_and_sources_are_shown_as_text(
    browser: Browser, issue: Callable[..., Issued], engine: Engine, clock: Clock
) -> None:
    issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    reveal, api_key, _secret = browser.create_key("<script>alert(1)</script>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in reveal.text
    for hostile in ("javascript:alert(2)", 'https://x.example/"><script>alert(3)</script>'):
        report_leak(
            engine,
            api_key,
            clock,
            url=hostile,
            source="<b>x</b>",
            policy="flag",
            sender="s@example.com",
        )
    key_id = max(r["id"] for r in rows(engine, api_keys))
    for path in (f"{PREFIX}/keys", f"{PREFIX}/keys/{key_id}", f"{PREFIX}/keys/{key_id}/delete"):
        page = browser.get(path).text
        assert "<script>alert" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    page = browser.get(f"{PREFIX}/keys/{key_id}").text
    assert 'href="javascript' not in page and "javascript:alert(2)" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert 'href="https://x.example/&#34;&gt;&lt;script&gt;' in page


# --- headers ----------------------------------------------------------------------------------------


INLINE = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def test_every_page_sends_the_security_headers_and_no_inline_code(
    browser: Browser, issue: Callable[..., Issued]
) -> None:
    issued = issue(email="owner@example.com")
    signed_out = [browser.get(f"{PREFIX}/sign-in"), browser.get(f"{PREFIX}/sign-in/sent")]
    browser.sign_in("owner@example.com")
    reveal, _key, _secret = browser.create_key("ci")
    pages = [
        *signed_out,
        reveal,
        *(
            browser.get(f"{PREFIX}{p}")
            for p in ("/keys", "/keys/new", f"/keys/{issued.key_id}", "/activity", "/nope")
        ),
        *(browser.get(f"{PREFIX}/keys/{issued.key_id}/{a}") for a in ("rotate", "revoke", "delete")),
    ]
    for page in pages:
        assert page.headers["content-security-policy"] == EXPECTED_CSP
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert not INLINE.search(page.text), INLINE.search(page.text)
    assert reveal.status_code == 200 and "spk_" in reveal.text
    for name in ("dashboard.css", "copy.js", "traffic.js", "favicon.svg"):
        asset = browser.get(f"{PREFIX}/static/{name}")
        assert asset.status_code == 200 and asset.headers["x-content-type-options"] == "nosniff"
    for script in ("copy.js", "traffic.js"):
        assert (
            browser.get(f"{PREFIX}/static/{script}")
            .headers["content-type"]
            .startswith(("text/javascript", "application/javascript"))
        )


# --- nothing secret kept or logged ------------------------------------------------------------------


def test_only_hashes_are_kept_and_logs_name_keys_by_id(
    browser: Browser,
    issue: Callable[..., Issued],
    engine: Engine,
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    issue(email="owner@example.com", label="first")
    caplog.set_level(logging.INFO)
    browser.request_link("owner@example.com")

    queued = repr(every_row(engine))
    (message,) = mailbox.deliver()
    link = sign_in_link(message)
    token = link.rsplit("/", 1)[1]
    assert token not in queued  # the sign-in mail waits encrypted
    (outbox_row,) = rows(engine, mail_outbox)
    assert outbox_row["payload"] is None and outbox_row["status"] == "sent"  # and is erased once sent
    browser.use_link(link)
    session_cookie = browser.client.cookies["sp_session"]
    _reveal, api_key, signing_secret = browser.create_key("my-secret-label")
    stored = repr(every_row(engine))
    for secret in (token, session_cookie, api_key, signing_secret):
        assert secret not in stored
    ours = [r for r in caplog.records if r.name.startswith("partner_endpoint")]  # not the test's httpx
    logged = "\n".join(r.getMessage() + repr(getattr(r, "fields", "")) for r in ours)
    for secret in (token, session_cookie, api_key, signing_secret, "my-secret-label", "owner@example.com"):
        assert secret not in logged
    assert "dashboard key created" in logged
    metrics = scrape(browser.client)
    assert 'soundpiece_dashboard_key_changes_total{change="created"} 1.0' in metrics
    assert "my-secret-label" not in metrics


@contextlib.contextmanager
def unreachable_database() -> Iterator[str]:
    """A PostgreSQL URL whose port is bound but not listening: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"postgresql+psycopg://postgres@127.0.0.1:{sock.getsockname()[1]}/down"


def test_no_log_line_holds_a_sign_in_token_while_the_database_is_down(
    open_browser: Callable[..., Browser],
    issue: Callable[..., Issued],
    mailbox: Mailbox,
    settings: Settings,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    issue(email="owner@example.com")
    signed_in, browser = open_browser(), open_browser()
    signed_in.sign_in("owner@example.com")
    browser.request_link("owner@example.com")
    path = urlsplit(sign_in_link(mailbox.deliver()[0])).path
    token = path.rsplit("/", 1)[1]
    caplog.set_level(logging.INFO)
    with unreachable_database() as down_url:
        down = make_engine(down_url)
        client = start_client(create_app(settings, engine=down, clock=clock))
        client.cookies.update(signed_in.client.cookies)
        answers = [client.get(p, follow_redirects=False) for p in (path, f"{PREFIX}/keys/1")]
        down.dispose()
    assert [a.status_code for a in answers] == [503, 503]
    ours = [r for r in caplog.records if r.name.startswith("partner_endpoint")]  # not the test's httpx
    lines = [JsonFormatter().format(record) for record in ours]  # as serve writes them
    assert not [line for line in lines if token in line or token[:8] in line]
    unavailable = [json.loads(line) for line in lines if "database unavailable" in line]
    assert [entry["path"] for entry in unavailable] == [
        "/dashboard/sign-in/{token}",
        "/dashboard/keys/{key_id}",
    ]
    assert browser.get(path).status_code == 200  # the database back, the link works


def test_a_failing_statement_logs_none_of_its_values(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """A database error's text carries the statement and its values (an address, a label, a client's
    address); a real serve logs the error, and none of the values."""
    env = service_env(
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        mail_dir=str(tmp_path / "outbox"),
        mail_worker="off",
    )
    with ServerProcess(env, tmp_path, "serve") as served, httpx.Client(base_url=served.url) as client:
        form = form_of(client.get(f"{PREFIX}/sign-in").text, f"{PREFIX}/sign-in")
        with write_transaction(engine) as conn:  # the schema is not what the service expects
            conn.execute(text("ALTER TABLE accounts RENAME TO accounts_elsewhere"))
        answer = client.post(f"{PREFIX}/sign-in", data=form | {"email": "victim@example.com"})
        assert answer.status_code == 303  # the address is looked up after the answer
        # The failure is logged, its statement named...
        wait_for(lambda: "FROM accounts" in served.log(), HANG_GUARD, what="the error in the log")
    assert "victim@example.com" not in served.log()  # ...and not the values it was given
