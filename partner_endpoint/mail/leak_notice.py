"""The leak notification email (plain text and HTML) and its outbox letter. Pure: data in, message out.

It names the key by label and last four characters; the leaked credential
itself is never an input, so it cannot end up in the mail.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from partner_endpoint.domain.display import URL_LIMIT, one_line
from partner_endpoint.mail.letters import Letter, MailContext
from partner_endpoint.mail.templates import template

KIND = "leak_notice"

ACTION_TEXT = {
    "revoked": "We revoked the key and its webhook signing secret. Requests with it now fail.",
    "flagged": "We flagged the key. It still works, but you should rotate it now.",
}


@dataclass(frozen=True, slots=True)
class LeakNotice:
    recipient: str
    key_id: int
    label: str
    key_suffix: str
    url: str
    source: str
    action: str
    seen_at: datetime
    leak_event_id: int

    def letter(self) -> Letter:
        """The outbox entry: one per key and leak event, however often the alert is delivered."""
        # Not dataclasses.asdict: it deep-copies, and a 10,000-key batch builds 10,000 of these.
        data = {f.name: getattr(self, f.name) for f in fields(self)} | {"seen_at": self.seen_at.isoformat()}
        return Letter(
            kind=KIND,
            recipient=self.recipient,
            dedupe_key=f"leak-{self.key_id}-{self.leak_event_id}",
            data=data,
            key_id=self.key_id,
            leak_event_id=self.leak_event_id,
        )

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> LeakNotice:
        return cls(**(dict(data) | {"seen_at": datetime.fromisoformat(data["seen_at"])}))


def key_url(dashboard_url: str, key_id: int) -> str:
    """The key's page in the dashboard (through sign-in when the reader has no session)."""
    return f"{dashboard_url.rstrip('/')}/keys/{key_id}"


def render(
    notice: LeakNotice, *, sender: str, docs_url: str, dashboard_url: str | None = None
) -> EmailMessage:
    """``dashboard_url`` None (the dashboard is switched off): the mail names the dashboard, links nowhere.

    Every field that came with the alert (url, source) or from an account (label) is shown through
    :func:`text.one_line`: a CR/LF in a url must not add lines of its sender's choosing to the mail."""
    label = one_line(notice.label)
    url = one_line(notice.url, URL_LIMIT)
    page = key_url(dashboard_url, notice.key_id) if dashboard_url else ""
    values = {
        "label": label,
        "suffix": notice.key_suffix,
        "url": url or "(no URL given)",
        "source": one_line(notice.source) or "unknown",
        "seen_at": notice.seen_at.strftime("%Y-%m-%d %H:%M UTC"),
        "action_text": ACTION_TEXT.get(notice.action, notice.action),
        "docs_url": docs_url,
        "key_page": f"Open the key in your dashboard: {page}" if page else "Open your account dashboard.",
    }
    escaped = {k: html.escape(v) for k, v in values.items()}
    # A link only to the url exactly as reported: one that had to be changed to be shown is text only.
    linkable = url == notice.url and url.startswith(("https://", "http://"))
    escaped["url_link"] = f'<a href="{escaped["url"]}">{escaped["url"]}</a>' if linkable else escaped["url"]
    escaped["key_page"] = (
        f'<a href="{html.escape(page)}">Open the key in your dashboard</a>'
        if page
        else "Open your account dashboard."
    )
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notice.recipient
    message["Subject"] = f'Your Soundpiece API key "{label}" (ending in {notice.key_suffix}) was leaked'
    message["Date"] = format_datetime(notice.seen_at)
    message.set_content(template("leak_notice.txt").substitute(values))
    message.add_alternative(template("leak_notice.html").substitute(escaped), subtype="html")
    return message


def render_data(data: Mapping[str, Any], context: MailContext) -> EmailMessage:
    """:func:`render` for a queued letter's data."""
    return render(
        LeakNotice.from_data(data),
        sender=context.sender,
        docs_url=context.docs_url,
        dashboard_url=context.dashboard_url,
    )
