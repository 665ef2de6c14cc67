"""The leak notification email (plain text and HTML) and its outbox letter. Pure: data in, message out.

It names the key by label and last four characters; the leaked credential
itself is never an input, so it cannot end up in the mail.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from partner_endpoint.domain.display import URL_LIMIT, one_line
from partner_endpoint.domain.origins import GITHUB
from partner_endpoint.domain.reported_by import finder, found_where
from partner_endpoint.mail import letters
from partner_endpoint.mail.letters import MailContext
from partner_endpoint.mail.templates import template
from partner_endpoint.store.leaks import KeyLeak
from partner_endpoint.store.outbox import NewMail

ACTION_TEXT = {
    "revoked": "We revoked the key and its webhook signing secret. Requests with it now fail.",
    "flagged": "We flagged the key. It still works, but you should rotate it now.",
}


def letter(leak: KeyLeak) -> NewMail:
    """The outbox entry: one per key and leak event, however often the alert is delivered."""
    data = {
        "recipient": leak.owner_email,
        "key_id": leak.key_id,
        "label": leak.label,
        "key_suffix": leak.key_suffix,
        "url": leak.url,
        "source": leak.source,
        "action": leak.action,
        "seen_at": leak.seen_at.isoformat(),
        "leak_event_id": leak.leak_event_id,
        "origin": leak.origin,
    }
    dedupe_key = f"leak-{leak.key_id}-{leak.leak_event_id}"
    return letters.letter(
        KIND, leak.owner_email, dedupe_key, data, key_id=leak.key_id, leak_event_id=leak.leak_event_id
    )


def leak_of(data: Mapping[str, Any]) -> KeyLeak:
    """The leak a queued letter's data tells of (the names are the outbox's: queued rows hold them)."""
    return KeyLeak(
        key_id=data["key_id"],
        owner_email=data["recipient"],
        label=data["label"],
        key_suffix=data["key_suffix"],
        url=data["url"],
        source=data["source"],
        action=data["action"],
        leak_event_id=data["leak_event_id"],
        seen_at=datetime.fromisoformat(data["seen_at"]),
        origin=data.get("origin", GITHUB.name),  # letters queued before origins were GitHub's
    )


def key_url(dashboard_url: str, key_id: int) -> str:
    """The key's page in the dashboard (through sign-in when the reader has no session)."""
    return f"{dashboard_url.rstrip('/')}/keys/{key_id}"


def render(leak: KeyLeak, *, sender: str, docs_url: str, dashboard_url: str | None = None) -> EmailMessage:
    """``dashboard_url`` None (the dashboard is switched off): the mail names the dashboard, links nowhere.

    Every field that came with the alert (url, source) or from an account (label) is shown through
    :func:`text.one_line`: a CR/LF in a url must not add lines of its sender's choosing to the mail."""
    label = one_line(leak.label)
    url = one_line(leak.url, URL_LIMIT)
    page = key_url(dashboard_url, leak.key_id) if dashboard_url else ""
    values = {
        "finder": finder(leak.origin),
        "where": found_where(leak.origin, leak.url),
        "label": label,
        "suffix": leak.key_suffix,
        "url": url or "(no URL given)",
        "source": one_line(leak.source) or "unknown",
        "seen_at": leak.seen_at.strftime("%Y-%m-%d %H:%M UTC"),
        "action_text": ACTION_TEXT.get(leak.action, leak.action),
        "docs_url": docs_url,
        "key_page": f"Open the key in your dashboard: {page}" if page else "Open your account dashboard.",
    }
    escaped = {k: html.escape(v) for k, v in values.items()}
    # A link only to the url exactly as reported: one that had to be changed to be shown is text only.
    linkable = url == leak.url and url.startswith(("https://", "http://"))
    escaped["url_link"] = f'<a href="{escaped["url"]}">{escaped["url"]}</a>' if linkable else escaped["url"]
    escaped["key_page"] = (
        f'<a href="{html.escape(page)}">Open the key in your dashboard</a>'
        if page
        else "Open your account dashboard."
    )
    message = EmailMessage()
    message["From"] = sender
    message["To"] = leak.owner_email
    message["Subject"] = f'Your Soundpiece API key "{label}" (ending in {leak.key_suffix}) was leaked'
    message["Date"] = format_datetime(leak.seen_at)
    message.set_content(template("leak_notice.txt").substitute(values))
    message.add_alternative(template("leak_notice.html").substitute(escaped), subtype="html")
    return message


def render_data(data: Mapping[str, Any], context: MailContext) -> EmailMessage:
    """:func:`render` for a queued letter's data."""
    return render(
        leak_of(data),
        sender=context.sender,
        docs_url=context.docs_url,
        dashboard_url=context.dashboard_url,
    )


KIND = letters.Kind("leak_notice", render_data)
