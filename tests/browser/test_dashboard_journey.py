"""An account owner's whole journey in Debian's Chromium, against a real ``soundpiece-partner serve``.

Sign in by the link from a real SMTP delivery, create ``production-server`` and read it off the
page once, get it reported leaked by a signed GitHub alert, follow the leak mail's link, rotate,
delete the old key, sign out. Every page is saved as a screenshot under test-artifacts/dashboard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

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
    shots.take(page, "key-leaked")

    # 4. Rotate (the old key keeps working), then delete the old key: 401; the new one works.
    page.get_by_role("link", name="Rotate", exact=True).click()
    shots.take(page, "rotate")
    page.get_by_role("button", name="Create new key").click()
    page.get_by_role("heading", name="Finish the rotation").wait_for()
    shots.take(page, "reveal-rotation")
    new_key = page.locator("#api-key").inner_text().strip()
    assert whoami(HTTP, new_key, base_url=base).json()["label"] == "production-server"
    assert whoami(HTTP, api_key, base_url=base).status_code == 200
    page.get_by_role("link", name="I have saved them").click()
    page.get_by_role("heading", name="Rotation in progress").wait_for()
    shots.take(page, "key-rotating")
    phone = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, storage_state=context.storage_state()
    )
    narrow = phone.new_page()
    for path, name in (("/dashboard/keys", "phone-keys"), (f"/dashboard/keys/{key_id}", "phone-key")):
        narrow.goto(f"{base}{path}")
        assert narrow.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than a phone
        shots.take(narrow, name)
    phone.close()
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
