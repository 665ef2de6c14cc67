"""The leak notification email, plain text and HTML. Pure: data in, message out.

It names the key by label and last four characters; the leaked credential
itself is never an input, so it cannot end up in the mail.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from importlib.resources import files
from string import Template

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


def _one_line(text: str) -> str:
    """Control characters out: a label with a newline must not break (or inject) a mail header."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


@cache
def _template(name: str) -> Template:
    return Template(files("partner_endpoint.mail").joinpath("templates", name).read_text(encoding="utf-8"))


def message_id(notice: LeakNotice, sender: str) -> str:
    """Deterministic, so a duplicate delivery of one notice is recognisable as such."""
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "soundpiece.invalid"
    return f"<leak-{notice.key_id}-{notice.leak_event_id}-{notice.action}@{domain}>"


def render(notice: LeakNotice, *, sender: str, docs_url: str) -> EmailMessage:
    label = _one_line(notice.label)
    values = {
        "label": label,
        "suffix": notice.key_suffix,
        "url": notice.url or "(no URL given)",
        "source": _one_line(notice.source) or "unknown",
        "seen_at": notice.seen_at.strftime("%Y-%m-%d %H:%M UTC"),
        "action_text": ACTION_TEXT.get(notice.action, notice.action),
        "docs_url": docs_url,
    }
    escaped = {k: html.escape(v) for k, v in values.items()}
    url = notice.url
    escaped["url_link"] = (
        f'<a href="{html.escape(url)}">{html.escape(url)}</a>'
        if url.startswith(("https://", "http://"))
        else escaped["url"]
    )
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notice.recipient
    message["Subject"] = f'Your Soundpiece API key "{label}" (ending in {notice.key_suffix}) was leaked'
    message["Date"] = format_datetime(notice.seen_at)
    message["Message-ID"] = message_id(notice, sender)
    message.set_content(_template("leak_notice.txt").substitute(values))
    message.add_alternative(_template("leak_notice.html").substitute(escaped), subtype="html")
    return message
