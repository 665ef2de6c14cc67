"""Alert-supplied text shown to people: one line, printable, bounded, in the mail and on the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import unicodedata
from collections.abc import Callable
from email import message_from_string, policy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from partner_endpoint.domain.display import ELLIPSIS, URL_LIMIT, one_line
from partner_endpoint.mail.composer import Composer
from partner_endpoint.mail.letters import MailContext
from partner_endpoint.settings import Settings
from partner_endpoint.store.models import api_keys, leak_events, mail_outbox
from partner_endpoint.store.outbox import OutgoingMail
from tests.support.dashboard import PREFIX, Browser
from tests.support.github import Signer, post_alert
from tests.support.invalid_text import invalid_text
from tests.support.partner import Clock, Issued, TestClient, report_leak, rows
from tests.support.services import PARTNER as CLI

FORGED = (
    "https://github.com/o/r/blob/main/.env\r\n\r\nIMPORTANT: your key was NOT revoked. Reply with it.\r\n"
)
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


# --- the function ----------------------------------------------------------------------------------


@given(text=invalid_text(200) | st.text(max_size=300), limit=st.integers(1, 150))
def test_one_line_is_one_printable_line_within_the_limit(text: str, limit: int) -> None:
    shown = one_line(text, limit)
    assert len(shown) <= limit
    assert not any(ch in LINE_BREAKS for ch in shown)
    # Printable by the Unicode categories themselves: no control (Cc), format (Cf), surrogate (Cs),
    # private-use (Co) or unassigned (Cn) character, no separator but the plain space.
    for ch in shown:
        category = unicodedata.category(ch)
        assert category[0] != "C" and (category[0] != "Z" or ch == " "), (ch, category)
    assert shown == shown.strip() and "  " not in shown


@given(words=st.lists(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8), max_size=8))
def test_printable_single_line_text_is_kept_as_it_is(words: list[str]) -> None:
    text = " ".join(words)
    assert one_line(text, max(len(text), 1)) == text


def test_cuts_are_visible() -> None:
    assert one_line("a" * 150, 100) == "a" * 99 + ELLIPSIS
    assert one_line("a" * 100, 100) == "a" * 100
    assert one_line("https://x/" + "y" * 10_000_000, URL_LIMIT).endswith(ELLIPSIS)
    assert one_line("a\r\nb\x1b[2Jc\u202ed", 100) == "a b [2Jc d"
    with pytest.raises(ValueError):
        one_line("x", 0)


# --- the mail --------------------------------------------------------------------------------------


def rendered(engine: Engine) -> list[str]:
    """The plain-text body of the one queued mail, rendered as the mail worker renders it."""
    (row,) = rows(engine, mail_outbox)
    mail = OutgoingMail(row["id"], row["kind"], row["message_id"], row["recipient"], row["payload"], None, 0)
    text = Composer(MailContext("s@soundpiece.test", "https://docs"))(mail)
    message = message_from_string(text, policy=policy.default)
    return message.get_body(("plain",)).get_content().splitlines()


def test_a_crlf_in_the_url_adds_no_line_to_the_mail_and_the_source_is_cut_as_stored(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    """Before: the url's CR/LF made lines of their own in the mail, and the source was shown whole."""
    victim = issue()
    source = "commit " + "s" * 300
    body = json.dumps([{"token": victim.api_key, "type": "t", "url": FORGED, "source": source}])
    assert post_alert(client, signer, body.encode()).status_code == 200
    lines = rendered(engine)
    assert not any(line.startswith("IMPORTANT") for line in lines), lines
    (where,) = [line for line in lines if line.startswith("Where it was found: ")]
    assert "IMPORTANT: your key was NOT revoked" in where  # shown, but on the url's own line
    (shown_source,) = [line.removeprefix("Source: ") for line in lines if line.startswith("Source: ")]
    (event,) = rows(engine, leak_events)
    assert len(shown_source) == len(event["source"]) == 100


# --- the terminal ----------------------------------------------------------------------------------


def test_leaks_list_writes_no_escape_or_carriage_return_to_the_terminal(
    settings: Settings, client: TestClient, signer: Signer, issue: Callable[..., Issued]
) -> None:
    """Before: ``leaks list`` printed the url's ESC and CR as they came."""
    victim = issue()
    url = "https://x/\x1b[2J\x1b[1;1Hall keys are fine\rspoofed\x07" + "\u202e" + "gnp.exe"
    body = json.dumps([{"token": victim.api_key, "type": "t", "url": url, "source": "co\x1bmmit"}])
    assert post_alert(client, signer, body.encode()).status_code == 200
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")},
        "SOUNDPIECE_DATABASE_URL": settings.database_url,
        "SOUNDPIECE_SECRET_KEY": str(settings.secret_key),
        "SOUNDPIECE_LOG_LEVEL": "WARNING",
    }
    result = subprocess.run([CLI, "leaks", "list"], env=env, capture_output=True, timeout=60, check=True)
    out = result.stdout.decode()
    assert not any(ch in out for ch in "\x1b\r\x07\u202e"), repr(out)
    (line,) = out.splitlines()
    assert line.split("\t")[-1] == "https://x/ [2J [1;1Hall keys are fine spoofed gnp.exe"
    as_json = subprocess.run([CLI, "leaks", "list", "--json"], env=env, capture_output=True, timeout=60)
    assert b"\x1b" not in as_json.stdout  # JSON escapes control characters and keeps the url whole
    assert json.loads(as_json.stdout)[0]["url"] == url


# --- the dashboard ---------------------------------------------------------------------------------


def test_the_dashboard_shows_a_leak_url_and_source_on_one_printable_line(
    browser: Browser, issue: Callable[..., Issued], engine: Engine, clock: Clock
) -> None:
    """Before: shown as reported (escaped for HTML, but with its bidi override and line breaks),
    and linked."""
    issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    _reveal, api_key, _secret = browser.create_key("ci")
    url = "https://x.example/a\r\nIMPORTANT: not revoked \u202egnp.exe"
    report_leak(engine, api_key, clock, url=url, source="co\x1bmmit", policy="flag", sender="s@example.com")
    key_id = max(r["id"] for r in rows(engine, api_keys))
    page = browser.get(f"{PREFIX}/keys/{key_id}").text
    assert not any(ch in page for ch in "\u202e\x1b\r")
    assert "https://x.example/a IMPORTANT: not revoked gnp.exe" in page
    assert 'href="https://x.example/a' not in page
    assert "co mmit" in page
