"""Where mail goes: an SMTP server (STARTTLS or implicit TLS, optional auth) or, with none configured,
``.eml`` files in a folder, so a notification is never dropped."""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field
from email.utils import parseaddr
from functools import cache
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from partner_endpoint.settings import Settings


@dataclass(frozen=True, slots=True)
class Delivery:
    """A finished message and where it goes."""

    message_id: str
    recipient: str
    message: str


class MailTransport(Protocol):
    async def send(self, mail: Delivery) -> None: ...


@cache
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Built once: loading the CA bundle takes ~50 ms of CPU, which inside ``serve`` would stall
    the event loop (every request) once per mail."""
    return ssl.create_default_context(cafile=ca_file)


@dataclass(frozen=True, slots=True)
class SmtpTransport:
    hostname: str
    port: int
    envelope_from: str
    implicit_tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str, envelope_from: str, ca_file: str | None = None) -> SmtpTransport:
        """``smtp://user:pass@host:587`` (STARTTLS) or ``smtps://user:pass@host:465`` (implicit TLS)."""
        parts = urlsplit(url)
        implicit_tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname or "localhost",
            port=parts.port or (465 if implicit_tls else 25),
            envelope_from=envelope_from,
            implicit_tls=implicit_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ca_file=ca_file,
        )

    async def send(self, mail: Delivery) -> None:
        # Credentials never travel in clear: with a user name, STARTTLS is required, else opportunistic.
        start_tls: bool | None = None if self.implicit_tls else (True if self.username else None)
        await aiosmtplib.send(
            mail.message,
            sender=self.envelope_from,
            recipients=[mail.recipient],
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.implicit_tls,
            start_tls=False if self.implicit_tls else start_tls,
            tls_context=tls_context(self.ca_file),
            timeout=self.timeout,
        )


@dataclass(frozen=True, slots=True)
class EmlDirectory:
    path: Path

    async def send(self, mail: Delivery) -> None:
        """Owner-only (0600) files in an owner-only folder: a mail names its recipient and their key."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9.@-]", "_", mail.message_id.strip("<>")) + ".eml"
        target = self.path / name
        temporary = target.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(mail.message)
        os.replace(temporary, target)


def destination(settings: Settings) -> str:
    """Where mail goes, in words (no password): for ``serve``'s first lines and ``--help``."""
    if settings.smtp_url:
        parts = urlsplit(settings.smtp_url)
        tls = "implicit TLS" if parts.scheme == "smtps" else "STARTTLS when offered"
        return (
            f"SMTP server {parts.hostname}:{parts.port or (465 if parts.scheme == 'smtps' else 25)} ({tls})"
        )
    return f".eml files in {settings.outbox} (no SOUNDPIECE_SMTP_URL)"


def transport_for(settings: Settings) -> MailTransport:
    if settings.smtp_url:
        envelope_from = parseaddr(settings.mail_from)[1] or settings.mail_from
        return SmtpTransport.from_url(settings.smtp_url, envelope_from, settings.smtp_ca_file)
    return EmlDirectory(settings.outbox)
