"""How the dashboard shows things: times, redacted keys, statuses, sightings. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape

import rules
from partner_endpoint.domain.display import URL_LIMIT, one_line
from partner_endpoint.services.traffic import UNUSED_AFTER
from partner_endpoint.store.activity import COMMAND_LINE, MAIL_WORKER
from partner_endpoint.store.api_keys import KeyRecord

_UNITS = ((365 * 86400, "year"), (30 * 86400, "month"), (86400, "day"), (3600, "hour"), (60, "minute"))


def ago(then: datetime | None, now: datetime) -> str:
    """``never``, ``just now``, ``3 minutes ago``, ``1 day ago``: how long ago, to one unit."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    for size, unit in _UNITS:
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def exact(moment: datetime) -> str:
    """``26 Nov 2026, 12:00 UTC``: the time itself, for titles and detail pages."""
    return moment.strftime("%d %b %Y, %H:%M UTC").lstrip("0")


_NEVER = Markup('<span class="muted">never</span>')


def when(moment: datetime | None, now: datetime) -> Markup:
    """How long ago, with the exact time in the element (``<time datetime title>``); ``never`` if never."""
    if moment is None:
        return _NEVER
    return Markup(
        f'<time datetime="{escape(moment.isoformat())}" title="{escape(exact(moment))}">'
        f"{escape(ago(moment, now))}</time>"
    )


def exactly(moment: datetime | None, now: datetime) -> Markup:
    """The exact time, then how long ago: for detail pages, where a tooltip is not enough."""
    if moment is None:
        return _NEVER
    return Markup(
        f'<time datetime="{escape(moment.isoformat())}">{escape(exact(moment))}</time>'
        f' <span class="muted">({escape(ago(moment, now))})</span>'
    )


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 request``, ``1,204 requests``, ``2 addresses``: a count with its noun, singular or plural."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def unused(key: KeyRecord, now: datetime) -> bool:
    """A key with no request in 30 days (a new one is not unused until it is 30 days old)."""
    last = key.last_used_at or key.created_at
    return now - last >= UNUSED_AFTER


def redacted(key_suffix: str) -> str:
    """A key as the dashboard shows it once created: prefix and last four characters only."""
    return f"{rules.API_KEY.prefix}…{key_suffix}"


@dataclass(frozen=True, slots=True)
class Status:
    text: str
    tone: str
    """CSS modifier: ``ok``, ``danger`` or ``muted``."""
    leaked: bool


WARNING_ICON = Markup(
    '<svg class="icon" viewBox="0 0 16 16" aria-hidden="true">'
    '<path d="M8 1.5 15 14H1L8 1.5Zm0 4.2v4.1m0 1.9v.4" /></svg>'
)


def badge(state: Status) -> Markup:
    icon = WARNING_ICON if state.leaked else Markup("")
    return Markup(f'<span class="badge {escape(state.tone)}">{icon}{escape(state.text)}</span>')


def status(key_status: str, sightings: int) -> Status:
    """Active, Leaked, Leaked · revoked or Revoked. A key with any sighting is leaked, whatever was done."""
    leaked = key_status == "flagged" or sightings > 0
    if key_status == "revoked":
        return Status("Leaked · revoked", "danger", True) if leaked else Status("Revoked", "muted", False)
    return Status("Leaked", "danger", True) if leaked else Status("Active", "ok", False)


_ACTIONS = {
    "revoked": "Revoked the key",
    "flagged": "Flagged it (the key still works)",
    "already_revoked": "Nothing more: already revoked",
    "already_flagged": "Nothing more: already flagged",
}


def action(value: str) -> str:
    return _ACTIONS.get(value, value.replace("_", " "))


def source(value: str) -> str:
    """GitHub's source names (``pull_request_comment``) in words, on one printable line."""
    return one_line(value.replace("_", " ")) or "unknown"


def shown_url(url: str) -> str:
    """A leak's url as it may be shown: one printable line, cut at :data:`text.URL_LIMIT`."""
    return one_line(url, URL_LIMIT)


def token_kind(token_type: str) -> str:
    return "Signing secret" if rules.format_named(token_type) is rules.WEBHOOK_SECRET else "API key"


def is_web_link(url: str) -> bool:
    """Only http(s) addresses become links; anything else (``javascript:``), and an address that had
    to be changed to be shown (control or bidi characters, cut), is shown as text."""
    if shown_url(url) != url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


_ACTIVITY = {
    "key_created": "Key created",
    "key_rotated": "Key rotated",
    "key_revoked": "Key revoked",
    "key_deleted": "Key deleted",
    "leak_reported": "Leak reported",
    "followup_mail_sent": "Mail sent: the leaked key was used from a new address",
    "signed_in": "Signed in",
    "signed_out": "Signed out",
    "allowlist_changed": "IP allowlist changed",
}


def activity(kind: str) -> str:
    """An activity log entry's kind in words (``key_created``: ``Key created``)."""
    return _ACTIVITY.get(kind, kind.replace("_", " ").capitalize())


def allowlist_change(details: Mapping[str, Any]) -> str:
    """What an allowlist change did: ``added 10.0.0.0/8; removed 203.0.113.0/24``."""
    before, after = list(details.get("before") or []), list(details.get("after") or [])
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    parts = [f"added {', '.join(added)}"] if added else []
    parts += [f"removed {', '.join(removed)}"] if removed else []
    if not after:
        parts.append("now empty: every address is allowed")
    return one_line("; ".join(parts) or "unchanged")


_ACTORS = {COMMAND_LINE.name: "Soundpiece operator", MAIL_WORKER.name: "Soundpiece"}


def actor(name: str) -> str:
    """Who made an entry: the signed-in address, ``GitHub``, or Soundpiece itself (mail, operators)."""
    return _ACTORS.get(name, name)
