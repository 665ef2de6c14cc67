"""Mail in the outbox as data: a kind of mail and what it needs, rendered by the worker when it sends.

Queuing data instead of finished messages keeps the writer's transaction short
(a large alert batch renders nothing inside it), and a template fix reaches
mail still waiting. Kinds whose data is a secret (a sign-in link) are stored
encrypted and erased once delivered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from partner_endpoint.store.outbox import NewMail
from partner_endpoint.store.secretbox import SecretBox


@dataclass(frozen=True, slots=True)
class MailContext:
    """What every message may need besides its own data; taken from the settings when it is sent."""

    sender: str
    docs_url: str
    dashboard_url: str | None = None
    """The dashboard's public address (links to a key's page, sign-in links); None: switched off."""


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    """As stored in the outbox's ``kind`` column: never renamed (queued rows name it)."""
    render: Callable[[Mapping[str, Any], MailContext], EmailMessage]
    """Data (as queued) to a message with From, To, Subject, Date and body; not Message-ID."""
    secret: bool = False
    """Encrypt the data at rest and erase it once delivered."""
    sent: str | None = None
    """The activity recorded in the key's account once one is delivered (see :mod:`store.activity`)."""


def letter(
    kind: Kind,
    recipient: str,
    dedupe_key: str,
    data: Mapping[str, Any],
    *,
    box: SecretBox | None = None,
    key_id: int | None = None,
    leak_event_id: int | None = None,
) -> NewMail:
    """The outbox row for one mail of ``kind``; a secret kind's data is sealed with ``box``."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if kind.secret:
        if box is None:
            raise ValueError(f"{kind.name} mail is secret: queuing it needs the encryption key")
        payload = box.encrypt(payload)
    return NewMail(kind.name, recipient, dedupe_key, payload, key_id=key_id, leak_event_id=leak_event_id)
