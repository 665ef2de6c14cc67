"""Mail in the outbox as data: a kind of mail and what it needs, rendered by the worker when it sends.

Queuing data instead of finished messages keeps the writer's transaction short
(a large alert batch renders nothing inside it), and a template fix reaches
mail still waiting. Kinds whose data is a secret (a sign-in link) are stored
encrypted and erased once delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True, slots=True)
class MailContext:
    """What every message may need besides its own data; taken from the settings when it is sent."""

    sender: str
    docs_url: str
    dashboard_url: str | None = None
    """The dashboard's public address (links to a key's page, sign-in links); None: switched off."""


@dataclass(frozen=True, slots=True)
class Kind:
    render: Callable[[Mapping[str, Any], MailContext], EmailMessage]
    """Data (as queued) to a message with From, To, Subject, Date and body; not Message-ID."""
    secret: bool = False
    """Encrypt the data at rest and erase it once delivered."""


@dataclass(frozen=True, slots=True)
class Letter:
    """One mail to queue. ``dedupe_key`` is its identity: queuing it twice sends it once."""

    kind: str
    recipient: str
    dedupe_key: str
    data: Mapping[str, Any]
    key_id: int | None = None
    leak_event_id: int | None = None


def message_id(dedupe_key: str, sender: str) -> str:
    """Deterministic, so a duplicate delivery of one letter is recognisable as such."""
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "soundpiece.invalid"
    return f"<{dedupe_key}@{domain}>"
