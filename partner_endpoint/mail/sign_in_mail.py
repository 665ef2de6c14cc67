"""The dashboard sign-in mail: a one-time link. Pure: data in, message out.

Its data (the link's token) is a secret: the ``sign_in`` kind is stored
encrypted in the outbox and erased once delivered. The link is built from the
configured dashboard address when the mail is sent, never from a request's
Host header, so nobody can have us mail a link to their own server.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import rules
from partner_endpoint.mail import letters
from partner_endpoint.mail.letters import MailContext
from partner_endpoint.mail.templates import template
from partner_endpoint.store.outbox import NewMail
from partner_endpoint.store.secretbox import SecretBox

_MAX_7BIT_LINE = 900
"""Shorter lines go out as 7bit, so the link stays whole in an .eml file (quoted-printable would wrap it)."""


@dataclass(frozen=True, slots=True)
class SignInMail:
    recipient: str
    token: str
    requested_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:
        return "SignInMail(<token redacted>)"

    def letter(self, box: SecretBox) -> NewMail:
        """The outbox entry, its data sealed with ``box`` (a sign-in link is a secret)."""
        data = {
            "recipient": self.recipient,
            "token": self.token,
            "requested_at": self.requested_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }
        # Named by the link's hash, not its id: SQLite reuses the ids of pruned links.
        dedupe_key = f"sign-in-{rules.identity(self.token)[:32]}"
        return letters.letter(KIND, self.recipient, dedupe_key, data, box=box)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SignInMail:
        return cls(
            recipient=data["recipient"],
            token=data["token"],
            requested_at=datetime.fromisoformat(data["requested_at"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
        )


def sign_in_url(dashboard_url: str, token: str) -> str:
    return f"{dashboard_url.rstrip('/')}/sign-in/{token}"


def render(mail: SignInMail, *, sender: str, dashboard_url: str | None) -> EmailMessage:
    if not dashboard_url:
        raise ValueError("sign-in mail needs the dashboard's address (the dashboard is switched off)")
    minutes = max(1, round((mail.expires_at - mail.requested_at).total_seconds() / 60))
    values = {
        "link": sign_in_url(dashboard_url, mail.token),
        "minutes": str(minutes),
        "requested_at": mail.requested_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.recipient
    message["Subject"] = "Your Soundpiece sign-in link"
    message["Date"] = format_datetime(mail.requested_at)
    text = template("sign_in.txt").substitute(values)
    message.set_content(text, cte=_whole_lines(text))
    escaped = {k: html.escape(v) for k, v in values.items()}
    page = template("sign_in.html").substitute(escaped)
    message.add_alternative(page, subtype="html", cte=_whole_lines(page))
    return message


def _whole_lines(part: str) -> str | None:
    """``7bit`` when the part may go as it is, so the link stays whole in an ``.eml`` file in both parts
    (quoted-printable would break it with soft line breaks, and a copied link would not work)."""
    plain = part.isascii() and max(len(line) for line in part.splitlines()) <= _MAX_7BIT_LINE
    return "7bit" if plain else None


def render_data(data: Mapping[str, Any], context: MailContext) -> EmailMessage:
    """:func:`render` for a queued letter's data."""
    return render(SignInMail.from_data(data), sender=context.sender, dashboard_url=context.dashboard_url)


KIND = letters.Kind("sign_in", render_data, secret=True)
