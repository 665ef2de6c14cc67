"""An account owner's whole journey in Debian's Chromium, against a real ``soundpiece-partner serve``.

Sign in by the link from a real SMTP delivery, create ``production-server`` and read it off the
page once, get it reported leaked by a signed GitHub alert, follow the leak mail's link, see the
leaked key used from a new address (on its page and in the follow-up mail), rotate and watch the
old key's traffic live, read the Activity page, delete the old key, sign out. Every page is saved
as a screenshot under test-artifacts/dashboard, at desktop and phone widths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

import rules
from tests.support.api_auth import DENIED, whoami
from tests.support.browser import ARTIFACTS, Screenshots
from tests.support.dashboard import sign_in_link, text_of
from tests.support.github import KeyServer, Signer, alert_body, post_alert
from tests.support.processes import HANG_GUARD, wait_for
from tests.support.services import HTTP, ServerProcess, SmtpSink, partner_cli, service_env

LEAK_URL = "https://github.com/acme/shop/blob/main/config/.env"


NEW_ADDRESS = "127.0.0.2"
"""Where the leaked key is used from after the report: a loopback address the key never saw before."""
FLUSH_INTERVAL = "1"
"""Seconds between traffic writes: the pages and the follow-up mail see requests within a second or two."""


def whoami_from(address: str, base: str, key: str) -> httpx.Response:
    """``/v1/whoami`` from a connection bound to ``address`` (any of 127.0.0.0/8 reaches the server)."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60) as client:
        return whoami(client, key, base_url=base)


def on_phone(
    chromium: Any, context: Any, base: str, shots: Screenshots, pages: list[tuple[str, str]]
) -> None:
    """Each page at a phone's width, signed in as ``context`` is: nothing wider than the screen."""
    phone = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, storage_state=context.storage_state()
    )
    narrow = phone.new_page()
    for path, name in pages:
        narrow.goto(f"{base}{path}")
        assert narrow.evaluate("document.documentElement.scrollWidth") <= 390, name  # nothing wider
        shots.take(narrow, name)
    phone.close()


def mail_matching(smtp: SmtpSink, predicate: Callable[[EmailMessage], bool], what: str) -> EmailMessage:
    found: list[EmailMessage] = []

    def arrived() -> bool:
        found[:] = [m for m in smtp.messages() if predicate(m)]
        return bool(found)

    wait_for(arrived, HANG_GUARD, what=what)
    return found[-1]


@pytest.fixture
def service(
    tmp_path: Path, smtp: SmtpSink, key_server: KeyServer
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    env = service_env(
        database_url=f"sqlite:///{tmp_path / 'soundpiece.db'}",
        secret_key=Fernet.generate_key().decode(),
        smtp_url=smtp.url,
        github_keys_url=key_server.url,
        leak_policy="flag",  # the leaked key keeps working until its owner deletes it
        mail_poll_interval="1",
        traffic_flush_interval=FLUSH_INTERVAL,
        log_level="INFO",  # everything it logs, to check that no secret is among it
    )
    server = ServerProcess(env, tmp_path, "serve")
    env["SOUNDPIECE_DASHBOARD_URL"] = f"{server.url}/dashboard"
    with server:
        yield server, env


def test_owner_journey(
    chromium: Any, service: tuple[ServerProcess, dict[str, str]], smtp: SmtpSink, signer: Signer
) -> None:
    server, env = service
    base = server.url
    shots = Screenshots(ARTIFACTS)
    print(f"\ndashboard screenshots: {ARTIFACTS}")
    # The operator's side, as in the README's quick start: an account (and keys it already has).
    account = partner_cli(
        env, "accounts", "create", "--email", "owner@example.com", "--allow-ip", "127.0.0.0/8"
    )
    for label in ("staging", "ci-runner"):
        partner_cli(env, "keys", "create", "--account", str(account["account_id"]), "--label", label)

    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    # 1. Ask for a sign-in link, read it from the mail, sign in.
    page.goto(f"{base}/dashboard/keys")
    assert page.url == f"{base}/dashboard/sign-in?next=%2Fdashboard%2Fkeys"
    shots.take(page, "sign-in")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_role("button", name="Send sign-in link").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    shots.take(page, "sign-in-sent")
    sign_in_mail = mail_matching(smtp, lambda m: "sign-in" in str(m["Subject"]), "the sign-in mail")
    assert sign_in_mail["To"] == "owner@example.com"
    link = sign_in_link(sign_in_mail)
    assert link.startswith(f"{base}/dashboard/sign-in/")
    page.goto(link)
    shots.take(page, "sign-in-link")
    page.get_by_role("button", name="Continue to dashboard").click()
    page.get_by_role("heading", name="API keys", exact=True).wait_for()
    assert page.url == f"{base}/dashboard/keys"
    shots.take(page, "keys")

    # 2. Create production-server (by keyboard alone), read both values, use the key, reload.
    page.get_by_role("link", name="Create key").click()
    label = page.get_by_label("Label")
    assert label.evaluate("element => element === document.activeElement")
    page.keyboard.type("production-server")
    shots.take(page, "create-key")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Save your new key").wait_for()
    shots.take(page, "reveal")
    api_key = page.locator("#api-key").inner_text().strip()
    signing_secret = page.locator("#signing-secret").inner_text().strip()
    assert rules.recognise(api_key) is rules.API_KEY
    assert rules.recognise(signing_secret) is rules.WEBHOOK_SECRET
    page.get_by_role("button", name="Copy API key").click()  # the one script: CSP let it run
    page.get_by_text("API key copied to the clipboard.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == api_key
    who = whoami(HTTP, api_key, base_url=base)
    used = 1  # requests with production-server's key, all within the hour, as its pages will count them
    assert who.status_code == 200 and who.json()["label"] == "production-server"
    key_id = who.json()["key_id"]
    page.reload()
    page.get_by_role("heading", name="production-server").wait_for()
    for shown in (page.content(), page.locator("body").inner_text()):
        assert api_key not in shown and signing_secret not in shown
    page.go_back()
    assert api_key not in page.content() and signing_secret not in page.content()

    # 3. GitHub reports the key: the dashboard shows it leaked, and the leak mail opens its page.
    answer = post_alert(HTTP, signer, alert_body(api_key, url=LEAK_URL), base_url=base)
    assert answer.status_code == 200 and answer.json()[0]["label"] == "true_positive"
    page.goto(f"{base}/dashboard/keys")
    page.get_by_role("heading", name="1 key was found in public").wait_for()
    assert page.locator("tr.is-leaked").get_by_role("link", name="production-server", exact=True).is_visible()
    shots.take(page, "keys-leaked")
    notice = mail_matching(smtp, lambda m: "was leaked" in str(m["Subject"]), "the leak notice")
    key_link = f"{base}/dashboard/keys/{key_id}"
    assert f"Open the key in your dashboard: {key_link}" in text_of(notice)
    page.goto(key_link)
    page.get_by_role("heading", name="This key was found in public").wait_for()
    assert page.get_by_role("link", name=LEAK_URL).get_attribute("href") == LEAK_URL
    page.get_by_text("No request with this key, accepted or refused, since the report.").wait_for()
    shots.take(page, "key-leaked")

    # 3b. The flag policy keeps the leaked key working: someone uses it from an address it never saw
    # (the owner's own server, 127.0.0.1, goes on too). The key page puts that address first, and
    # the owner gets one follow-up mail about it.
    for _ in range(3):
        assert whoami_from(NEW_ADDRESS, base, api_key).status_code == 200
    assert whoami_from("127.0.0.1", base, api_key).status_code == 200
    used += 4
    followup = mail_matching(smtp, lambda m: "from a new address" in str(m["Subject"]), "the follow-up")
    assert str(followup["Subject"]) == (
        'Your leaked Soundpiece API key "production-server" was used from a new address'
    )
    assert f"  {NEW_ADDRESS}, first at " in text_of(followup)
    assert f"See who used it on the key's page: {key_link}" in text_of(followup)
    after = page.locator("#after-report tbody tr")

    def both_addresses_shown() -> bool:
        page.reload()
        return after.count() == 2

    wait_for(both_addresses_shown, HANG_GUARD, interval=0.5, what="the new address on the key page")
    assert after.nth(0).locator("th").inner_text().split() == [NEW_ADDRESS, "New", "address"]
    assert after.nth(0).locator("td").nth(0).inner_text() == "3"  # its requests
    assert " ".join(after.nth(1).locator("th").inner_text().split()) == "127.0.0.1 Used it before the report"
    page.get_by_text("Show the numbers").first.click()  # the week's chart, as a table
    assert page.locator("#week-chart-numbers tfoot td").first.inner_text() == str(used)
    shots.take(page, "key-leaked-used")
    page.reload()

    # 4. Rotate (the old key keeps working), then delete the old key: 401; the new one works.
    page.get_by_role("link", name="Rotate", exact=True).click()
    shots.take(page, "rotate")
    page.get_by_role("button", name="Create new key").click()
    page.get_by_role("heading", name="Finish the rotation").wait_for()
    shots.take(page, "reveal-rotation")
    new_key = page.locator("#api-key").inner_text().strip()
    assert whoami(HTTP, new_key, base_url=base).json()["label"] == "production-server"
    assert whoami(HTTP, api_key, base_url=base).status_code == 200
    used += 1
    page.get_by_role("link", name="I have saved them").click()
    page.get_by_role("heading", name="Rotation in progress").wait_for()
    # The step "delete this key when it has no more traffic" follows the old key live: the page's
    # script reads its figures every few seconds, and each request with it shows up, no reload.
    last_hour = page.locator('#rotation-title ~ ol [data-live="last_hour"]')

    def shows_live(count: int) -> None:
        wait_for(lambda: last_hour.inner_text() == str(count), HANG_GUARD, interval=0.2, what=f"{count} live")

    for _ in range(2):
        shows_live(used)
        assert whoami_from("127.0.0.1", base, api_key).status_code == 200
        used += 1
    shows_live(used)
    page.get_by_text("Updated every 2 seconds.").wait_for()
    shots.take(page, "key-rotating")

    # 4b. The Activity page: what happened, newest first.
    page.get_by_role("link", name="Activity").click()
    page.get_by_role("heading", name="Activity").wait_for()
    assert "Key rotated" in page.locator("#activity-log tbody tr").nth(0).inner_text()
    log = page.locator("#activity-log").inner_text()
    assert "Mail sent: the leaked key was used from a new address" in log
    assert f"Leak reported by GitHub: {LEAK_URL}" in log
    shots.take(page, "activity")
    on_phone(
        chromium,
        context,
        base,
        shots,
        [
            ("/dashboard/keys", "phone-keys"),
            (f"/dashboard/keys/{key_id}", "phone-key"),
            (f"/dashboard/keys/{key_id}/rotate", "phone-rotate"),
            ("/dashboard/activity", "phone-activity"),
        ],
    )
    page.go_back()
    page.get_by_role("heading", name="Rotation in progress").wait_for()
    page.get_by_role("link", name="Delete this key").click()
    assert page.get_by_text("Last used").first.is_visible()
    shots.take(page, "delete")
    page.get_by_role("button", name="Delete key").click()
    page.get_by_text("Key deleted.").wait_for()
    shots.take(page, "keys-after-delete")
    refused = whoami(HTTP, api_key, base_url=base)
    assert (refused.status_code, refused.json()) == (401, DENIED)
    assert whoami(HTTP, new_key, base_url=base).status_code == 200

    # 5. Sign out: the old session cookie opens no page any more.
    cookies = context.cookies()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    shots.take(page, "signed-out")
    replay = chromium.new_context()
    replay.add_cookies(cookies)
    stale = replay.new_page()
    for path in ("/dashboard/keys", f"/dashboard/keys/{key_id}", "/dashboard/keys/new"):
        stale.goto(f"{base}{path}")
        assert stale.url.startswith(f"{base}/dashboard/sign-in"), path
    replay.close()
    context.close()
    assert problems == []  # no CSP violation, no script error, on any page
    server.stop()
    logged = server.log()
    for secret in (link.rsplit("/", 1)[1], api_key, signing_secret, new_key):
        assert secret not in logged
