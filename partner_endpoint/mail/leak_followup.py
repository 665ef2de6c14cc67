"""The follow-up to a leak notice: a leaked key was used, or tried, from an address new to it. Pure.

At most one per leak (the letter's identity is the key's first report), so an owner hears once
that someone else may hold the key, whatever the traffic after.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from partner_endpoint.domain.display import one_line
from partner_endpoint.mail import letters
from partner_endpoint.mail.leak_notice import key_url
from partner_endpoint.mail.letters import MailContext
from partner_endpoint.mail.templates import template
from partner_endpoint.store.leaks import FirstReport
from partner_endpoint.store.outbox import NewMail

_STATE = {
    "revoked": "The key is revoked: its requests were refused.",
    "flagged": "The key still works (your account's policy flags leaked keys instead of revoking them).",
}


def identity(report: FirstReport) -> str:
    """The follow-up's outbox identity: one per leak, however often its key is used."""
    return f"leak-followup-{report.key_id}-{report.leak_event_id}"


def letter(report: FirstReport, address: str, first_at: datetime, others: int, refused: bool) -> NewMail:
    """The outbox entry for the first new address after ``report``; ``others``: more new ones."""
    data = {
        "recipient": report.owner_email,
        "key_id": report.key_id,
        "label": report.label,
        "key_suffix": report.key_suffix,
        "reported_at": report.first_seen.isoformat(),
        "action": report.action,
        "address": address,
        "first_at": first_at.isoformat(),
        "others": others,
        "refused": refused,
    }
    return letters.letter(
        KIND,
        report.owner_email,
        identity(report),
        data,
        key_id=report.key_id,
        leak_event_id=report.leak_event_id,
    )


def render_data(data: Mapping[str, Any], context: MailContext) -> EmailMessage:
    label = one_line(str(data["label"]))
    page = key_url(context.dashboard_url, int(data["key_id"])) if context.dashboard_url else ""
    others = int(data["others"])
    values = {
        "label": label,
        "suffix": str(data["key_suffix"]),
        "reported_at": datetime.fromisoformat(data["reported_at"]).strftime("%Y-%m-%d %H:%M UTC"),
        "used": "tried (and refused)" if data["refused"] else "used",
        "address": one_line(str(data["address"])),
        "first_at": datetime.fromisoformat(data["first_at"]).strftime("%Y-%m-%d %H:%M UTC"),
        "more": f" (and {others} more new address{'es' if others > 1 else ''})" if others else "",
        "state": _STATE.get(str(data["action"]), ""),
        "key_page": f"See who used it on the key's page: {page}" if page else "See it in your dashboard.",
    }
    escaped = {k: html.escape(v) for k, v in values.items()}
    if page:
        escaped["key_page"] = f'<a href="{html.escape(page)}">See who used it on the key\'s page</a>'
    message = EmailMessage()
    message["From"] = context.sender
    message["To"] = str(data["recipient"])
    message["Subject"] = f'Your leaked Soundpiece API key "{label}" was {values["used"]} from a new address'
    message["Date"] = format_datetime(datetime.fromisoformat(data["first_at"]))
    message.set_content(template("leak_followup.txt").substitute(values))
    message.add_alternative(template("leak_followup.html").substitute(escaped), subtype="html")
    return message


KIND = letters.Kind("leak_followup", render_data, sent="followup_mail_sent")
