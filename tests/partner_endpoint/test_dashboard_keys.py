"""Developer → API keys: listing thousands, creating (shown once), rotating, revoking, deleting, leaks.

In-process on SQLite and PostgreSQL; every key is checked against the real API (``/v1/whoami``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from partner_endpoint.api.key_directory import KeyDirectory
from partner_endpoint.dashboard import present
from partner_endpoint.services.accounts import AccountService
from partner_endpoint.settings import Settings
from partner_endpoint.store import api_keys as key_store
from partner_endpoint.store.db import NotFound, write_transaction
from partner_endpoint.store.models import api_keys, leak_events
from partner_endpoint.store.secretbox import SecretBox
from tests.support.api_auth import DENIED, whoami
from tests.support.dashboard import (
    PREFIX,
    Browser,
    Mailbox,
    form_of,
    hidden_fields,
    page_text,
    revealed,
    sign_in_link,
    text_of,
)
from tests.support.github import alert_body, post_alert
from tests.support.partner import Clock, Issued, TestClient, add_key, rows


def key_ids_on(page: str) -> list[int]:
    return [
        int(k)
        for k in re.findall(r'<th scope="row" class="label-cell"><a href="/dashboard/keys/(\d+)">', page)
    ]


# --- create: shown once -----------------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_works_at_once(
    browser: Browser, issue: Callable[..., Issued], engine: Engine
) -> None:
    issue(email="owner@example.com", label="old")
    browser.sign_in("owner@example.com")
    form = browser.form(f"{PREFIX}/keys/new", f"{PREFIX}/keys")
    reveal = browser.post(f"{PREFIX}/keys", form | {"label": "  production-server "})
    assert reveal.status_code == 200 and reveal.headers["cache-control"] == "no-store"
    assert "the only time we show these values" in reveal.text
    api_key, secret = revealed(reveal.text, "api-key"), revealed(reveal.text, "signing-secret")
    assert api_key.startswith("spk_") and secret.startswith("whsec_")
    answer = whoami(browser.client, api_key)
    status, who = answer.status_code, answer.json()
    assert status == 200 and who["label"] == "production-server"  # type: ignore[index]
    new_id = who["key_id"]  # type: ignore[index]
    # Sending the same form again (reload, Back and resubmit) creates nothing and shows nothing.
    again = browser.post(f"{PREFIX}/keys", form | {"label": "production-server"})
    assert (again.status_code, again.headers["location"]) == (
        303,
        f"{PREFIX}/keys/{new_id}?done=already-created",
    )
    assert len(rows(engine, api_keys)) == 2
    for path in (again.headers["location"], f"{PREFIX}/keys", f"{PREFIX}/keys/{new_id}"):
        page = browser.get(path).text
        assert api_key not in page and secret not in page
        assert api_key[-4:] in page  # the redacted form: prefix and last four only
    assert "no second key was made" in browser.get(again.headers["location"]).text


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("", "Give the key a label"),
        ("x" * 101, "100 characters"),
        ("a\x00b", "cannot be shown"),
        ("\u202eevil", "cannot be shown"),
    ],
)
def test_bad_labels_are_refused_with_the_form_kept(
    browser: Browser, issue: Callable[..., Issued], engine: Engine, label: str, message: str
) -> None:
    issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    form = browser.form(f"{PREFIX}/keys/new", f"{PREFIX}/keys")
    refused = browser.post(f"{PREFIX}/keys", form | {"label": label})
    assert refused.status_code == 400 and message in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert len(rows(engine, api_keys)) == 1


# --- the list ---------------------------------------------------------------------------------------


def test_an_empty_list_says_whether_the_account_has_keys_or_the_filter_matched_none(
    browser: Browser, issue: Callable[..., Issued], engine: Engine, clock: Clock
) -> None:
    issued = issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    for params in ({"q": "zzzz"}, {"status": "revoked"}):
        page = browser.get(f"{PREFIX}/keys", params=params).text
        assert "No keys match" in page and "No API keys yet" not in page
    with write_transaction(engine) as conn:
        key_store.delete(conn, issued.key_id, clock.now())
    for params in ({}, {"q": "zzzz"}, {"status": "revoked"}, {"page": "2"}):
        page = browser.get(f"{PREFIX}/keys", params=params).text
        assert "No API keys yet" in page and "No keys match" not in page


def test_thousands_of_keys_page_filter_and_sort(
    browser: Browser, issue: Callable[..., Issued], engine: Engine, box: SecretBox, clock: Clock
) -> None:
    first = issue(email="owner@example.com", label="seed")
    with write_transaction(engine) as conn:
        for i in range(1, 1200):
            label = ["web", "Worker 100%", "batch_job"][i % 3] + f"-{i:04d}"
            add_key(conn, box, first.account_id, label, clock.now() + timedelta(seconds=i))
    browser.sign_in("owner@example.com")
    page = browser.get(f"{PREFIX}/keys").text
    ids = key_ids_on(page)
    assert len(ids) == 50 and ids == sorted(ids, reverse=True) and ids[0] == 1200  # newest first
    assert "Showing <strong>1–50</strong> of <strong>1,200</strong>" in page
    last = browser.get(f"{PREFIX}/keys?page=24").text
    assert key_ids_on(last)[-1] == first.key_id
    assert key_ids_on(browser.get(f"{PREFIX}/keys?page=999").text) == key_ids_on(last)  # clamped
    assert "Page 24 of 24" in last
    # Filter within labels, case-insensitive, with % and _ taken literally.
    percent = browser.get(f"{PREFIX}/keys", params={"q": "worker 100%"}).text
    assert "of <strong>400</strong>" in percent
    underscore = browser.get(f"{PREFIX}/keys", params={"q": "h_j"}).text
    assert "of <strong>400</strong>" in underscore
    assert "No keys match" in browser.get(f"{PREFIX}/keys", params={"q": "b%j"}).text
    # By the last four characters, also when the whole key is pasted (and then never echoed).
    by_suffix = browser.get(f"{PREFIX}/keys", params={"q": first.api_key[-4:]}).text
    assert first.key_id in key_ids_on(by_suffix)
    pasted = browser.get(f"{PREFIX}/keys", params={"q": first.api_key}).text
    assert first.key_id in key_ids_on(pasted) and first.api_key not in pasted
    by_label = key_ids_on(browser.get(f"{PREFIX}/keys", params={"order": "label"}).text)
    labels = {r["id"]: r["label"] for r in rows(engine, api_keys)}
    assert [labels[i] for i in by_label] == sorted(labels.values())[:50]
    # Status filters and the query string kept across pages.
    with write_transaction(engine) as conn:
        key_store.revoke(conn, 7, clock.now())
    revoked = browser.get(f"{PREFIX}/keys", params={"status": "revoked"}).text
    assert key_ids_on(revoked) == [7] and "Revoked" in revoked
    filtered = browser.get(f"{PREFIX}/keys", params={"q": "web", "order": "label"}).text
    assert 'href="/dashboard/keys?q=web&amp;order=label&amp;page=2"' in filtered


def test_last_used_is_relative_with_the_exact_time_at_hand(
    browser: Browser, issue: Callable[..., Issued], engine: Engine, clock: Clock, box: SecretBox
) -> None:
    used = issue(email="owner@example.com", label="used")
    three_minutes_ago = clock.now() - timedelta(minutes=3)
    with write_transaction(engine) as conn:
        unused = add_key(conn, box, used.account_id, "unused", clock.now())
        conn.execute(
            update(api_keys).where(api_keys.c.id == used.key_id).values(last_used_at=three_minutes_ago)
        )
    browser.sign_in("owner@example.com")
    page = browser.get(f"{PREFIX}/keys").text
    iso = three_minutes_ago.isoformat()
    assert f'<time datetime="{iso}" title="26 Nov 2026, 11:57 UTC">3 minutes ago</time>' in page
    assert page.count('<span class="muted">never</span>') == 1
    detail = browser.get(f"{PREFIX}/keys/{unused.key_id}").text
    assert "never" in detail


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "never"),
        (0, "just now"),
        (59, "just now"),
        (60, "1 minute ago"),
        (180, "3 minutes ago"),
        (3599, "59 minutes ago"),
        (3600, "1 hour ago"),
        (86400 * 2 + 5, "2 days ago"),
        (86400 * 45, "1 month ago"),
        (86400 * 800, "2 years ago"),
        (-30, "just now"),
    ],
)
def test_relative_times(seconds: int | None, text: str) -> None:
    now = Clock().now()
    then = None if seconds is None else now - timedelta(seconds=seconds)
    assert present.ago(then, now) == text


# --- rotate, revoke, delete -------------------------------------------------------------------------


@pytest.fixture
def key_changes_told(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """What the API's key directory is told by ``key_changed`` (then done as usual): open browsers after."""
    told: list[int] = []
    original = KeyDirectory.key_changed

    def recording(directory: KeyDirectory, key_id: int) -> None:
        told.append(key_id)
        original(directory, key_id)

    monkeypatch.setattr(KeyDirectory, "key_changed", recording)
    return told


def test_rotate_then_delete_the_old_key(
    key_changes_told: list[int],
    open_browser: Callable[..., Browser],
    issue: Callable[..., Issued],
    clock: Clock,
    engine: Engine,
) -> None:
    """Deleted: refused at once by this process too, whose API cache held the key a moment ago."""
    changed = key_changes_told
    browser = open_browser()
    old = issue(email="owner@example.com", label="production-server")
    browser.sign_in("owner@example.com")
    assert whoami(browser.client, old.api_key).status_code == 200
    # The API records last uses in the background, at the next flush of its traffic counts.
    browser.client.portal.call(browser.client.app.state.flush_traffic)
    assert rows(engine, api_keys)[0]["last_used_at"] is not None
    clock.advance(120)
    rotate_page = browser.get(f"{PREFIX}/keys/{old.key_id}/rotate").text
    assert "Last request 2 minutes ago" in page_text(rotate_page)
    reveal = browser.post(
        f"{PREFIX}/keys/{old.key_id}/rotate", form_of(rotate_page, f"{PREFIX}/keys/{old.key_id}/rotate")
    )
    assert reveal.status_code == 200 and "Finish the rotation" in reveal.text
    assert f'href="{PREFIX}/keys/{old.key_id}">I have saved them' in reveal.text
    new_key = revealed(reveal.text, "api-key")
    assert new_key.startswith("spk_")
    answer = whoami(browser.client, new_key)
    status, who = answer.status_code, answer.json()
    assert status == 200 and who["label"] == "production-server"  # type: ignore[index]
    assert whoami(browser.client, old.api_key).status_code == 200  # the old key keeps working meanwhile
    old_page = browser.get(f"{PREFIX}/keys/{old.key_id}").text
    assert "Rotation in progress" in old_page and f"/keys/{who['key_id']}" in old_page  # type: ignore[index]
    assert "Replaces an older key" in browser.get(f"{PREFIX}/keys/{who['key_id']}").text  # type: ignore[index]
    confirm = browser.get(f"{PREFIX}/keys/{old.key_id}/delete").text
    assert "Last used" in confirm and "2 minutes ago" in confirm and "Delete key" in confirm
    assert changed == []
    deleted = browser.end(old.key_id, "delete")
    assert (deleted.status_code, deleted.headers["location"]) == (303, f"{PREFIX}/keys?done=deleted")
    assert changed == [old.key_id]
    refused = whoami(browser.client, old.api_key)
    assert (refused.status_code, refused.json()) == (401, DENIED)
    assert whoami(browser.client, new_key).status_code == 200
    listing = browser.get(f"{PREFIX}/keys?done=deleted").text
    assert "Key deleted" in listing and key_ids_on(listing) == [who["key_id"]]  # type: ignore[index]
    assert browser.get(f"{PREFIX}/keys/{old.key_id}").status_code == 404


def test_revoke_keeps_the_key_listed(
    key_changes_told: list[int], open_browser: Callable[..., Browser], issue: Callable[..., Issued]
) -> None:
    changed = key_changes_told
    browser = open_browser()
    issued = issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    assert whoami(browser.client, issued.api_key).status_code == 200
    revoked = browser.end(issued.key_id, "revoke")
    assert revoked.headers["location"] == f"{PREFIX}/keys/{issued.key_id}?done=revoked"
    assert changed == [issued.key_id]
    refused = whoami(browser.client, issued.api_key)
    assert (refused.status_code, refused.json()) == (401, DENIED)
    page = browser.get(revoked.headers["location"]).text
    assert "Key revoked" in page and '<span class="badge muted">Revoked</span>' in page
    assert f"/keys/{issued.key_id}/revoke" not in page  # nothing left to revoke
    assert issued.key_id in key_ids_on(browser.get(f"{PREFIX}/keys").text)


# --- leaks ------------------------------------------------------------------------------------------


def test_a_leaked_key_is_unmistakable_and_the_mail_leads_to_it(
    open_browser: Callable[..., Browser],
    issue: Callable[..., Issued],
    engine: Engine,
    mailbox: Mailbox,
    client: TestClient,
    signer: object,
) -> None:
    issued = issue(email="owner@example.com", label="production-server")
    url = "https://github.com/acme/app/blob/main/.env"
    assert post_alert(client, signer, alert_body(issued.api_key, url=url, source="commit")).status_code == 200  # type: ignore[arg-type]
    (notice,) = mailbox.deliver()
    text = text_of(notice)
    key_url = f"http://127.0.0.1:8000/dashboard/keys/{issued.key_id}"
    assert f"Open the key in your dashboard: {key_url}" in text
    assert "choose Rotate" in text and "choose Delete" in text
    assert f'href="{key_url}"' in notice.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # Signed out, the link goes through sign-in and lands on the key's page.
    browser = open_browser()
    to_sign_in = browser.get(f"{PREFIX}/keys/{issued.key_id}")
    assert to_sign_in.headers["location"] == f"{PREFIX}/sign-in?next=%2Fdashboard%2Fkeys%2F{issued.key_id}"
    sign_in_page = browser.get(to_sign_in.headers["location"]).text
    fields = form_of(sign_in_page, f"{PREFIX}/sign-in") | {"email": "owner@example.com"}
    browser.post(f"{PREFIX}/sign-in", fields)
    landed = browser.use_link(sign_in_link(mailbox.deliver()[0]))
    assert landed.headers["location"] == f"{PREFIX}/keys/{issued.key_id}"
    page = browser.get(landed.headers["location"]).text
    assert "This key was found in public" in page and "Leaked · revoked" in page
    assert f'<a href="{url}" rel="noopener noreferrer nofollow">{url}</a>' in page
    assert "commit" in page and "Revoked the key" in page
    listing = browser.get(f"{PREFIX}/keys").text
    assert "1 key was found in public" in listing and 'class="is-leaked"' in listing
    # Deleted, the key leaves the list and the banner; its leak events stay, for the record.
    assert browser.end(issued.key_id, "delete").status_code == 303
    assert "found in public" not in browser.get(f"{PREFIX}/keys").text
    assert len(rows(engine, leak_events)) == 1


# --- accounts ---------------------------------------------------------------------------------------


def test_the_allowlist_is_shown_read_only(browser: Browser, issue: Callable[..., Issued]) -> None:
    issue(email="owner@example.com", allow_ips=["203.0.113.0/24", "2001:db8::/48"])
    browser.sign_in("owner@example.com")
    page = browser.get(f"{PREFIX}/keys").text
    assert "<code>203.0.113.0/24</code>" in page and "<code>2001:db8::/48</code>" in page
    assert "Contact your account manager to change it." in page
    assert "allow" not in hidden_fields(page)


def test_no_allowlist_no_section(browser: Browser, issue: Callable[..., Issued]) -> None:
    issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    assert "IP allowlist" not in browser.get(f"{PREFIX}/keys").text


def test_one_address_owning_several_accounts(
    browser: Browser, issue: Callable[..., Issued], mailbox: Mailbox
) -> None:
    """Documented choice: the mailbox is the identity; its owner sees each of its accounts, one at a time."""
    first = issue(email="Owner@Example.com", label="first-account-key")
    second = issue(email="owner@example.com", label="second-account-key")
    issue(email="stranger@example.com", label="not-yours")
    browser.request_link("OWNER@example.com")
    (message,) = mailbox.deliver()
    assert message["To"] == "Owner@Example.com"  # the address as the (oldest) account has it
    browser.use_link(sign_in_link(message))
    page = browser.get(f"{PREFIX}/keys").text
    assert "first-account-key" in page and "second-account-key" not in page
    assert f'<option value="{second.account_id}">Account {second.account_id}</option>' in page
    switch = form_of(page, f"{PREFIX}/account") | {"account_id": str(second.account_id)}
    assert browser.post(f"{PREFIX}/account", switch).status_code == 303
    page = browser.get(f"{PREFIX}/keys").text
    assert "second-account-key" in page and "first-account-key" not in page and "not-yours" not in page
    # A link to a key of the other account (from a leak mail) opens it, and offers that account.
    page = browser.get(f"{PREFIX}/keys/{first.key_id}")
    assert page.status_code == 200 and f"This key belongs to account {first.account_id}." in page.text
    assert "second-account-key" in browser.get(f"{PREFIX}/keys").text


def test_the_dashboard_can_be_switched_off(
    make_client: Callable[..., TestClient],
    issue: Callable[..., Issued],
    mailbox: Mailbox,
    signer: object,
    settings: Settings,
) -> None:
    client = make_client(dashboard=False)
    for path in ("/dashboard", "/dashboard/sign-in", "/dashboard/keys"):
        assert client.get(path, follow_redirects=False).status_code == 404
    issued = issue()
    assert post_alert(client, signer, alert_body(issued.api_key)).status_code == 200  # type: ignore[arg-type]
    off = dataclasses.replace(mailbox, settings=dataclasses.replace(settings, dashboard=False))
    text = text_of(off.deliver()[0])
    assert "Open your account dashboard." in text and "/dashboard/keys" not in text


def test_allowlist_changes_are_strict(engine: Engine, issue: Callable[..., Issued], clock: Clock) -> None:
    issued = issue(allow_ips=["192.0.2.0/24"])
    service = AccountService(engine, clock)
    assert service.allow(issued.account_id, [" 203.0.113.9 ", "2001:db8::/48"]) == (
        "192.0.2.0/24",
        "203.0.113.9/32",
        "2001:db8::/48",
    )
    assert service.disallow(issued.account_id, ["192.0.2.0/24"]) == ("203.0.113.9/32", "2001:db8::/48")
    for bad in (["203.0.113.5/2"], ["10.0.0.1/8"], ["2001:db8::1/32"], ["300.1.1.1"], ["x"], [""]):
        with pytest.raises(ValueError):
            service.allow(issued.account_id, bad)
    with pytest.raises(ValueError):
        service.disallow(issued.account_id, ["198.51.100.0/24"])
    with pytest.raises(NotFound):
        service.allow(4242, ["10.0.0.0/8"])
    assert service.get(issued.account_id).allowlist == ("203.0.113.9/32", "2001:db8::/48")
