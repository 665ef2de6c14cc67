"""Turning queued rows back into messages, when the worker sends them."""

from __future__ import annotations

import json
from collections.abc import Mapping

from partner_endpoint.mail.kinds import KINDS
from partner_endpoint.mail.letters import Kind, MailContext
from partner_endpoint.store.outbox import OutgoingMail
from partner_endpoint.store.secretbox import SecretBox


class UnsendableMail(Exception):
    """A queued row that cannot become a message (unknown kind, data erased or undecryptable)."""


class Composer:
    """Renders queued rows at send time, with the settings of the process that sends them."""

    def __init__(
        self, context: MailContext, box: SecretBox | None = None, kinds: Mapping[str, Kind] = KINDS
    ) -> None:
        self._context = context
        self._box = box
        self._kinds = kinds

    def is_secret(self, mail: OutgoingMail) -> bool:
        kind = self._kinds.get(mail.kind)
        return kind is not None and kind.secret

    def sent_activity(self, mail: OutgoingMail) -> str | None:
        """The activity to record once ``mail`` is delivered, if its kind has one."""
        kind = self._kinds.get(mail.kind)
        return None if kind is None else kind.sent

    def __call__(self, mail: OutgoingMail) -> str:
        if mail.message is not None:  # queued before rows held data
            return mail.message
        kind = self._kinds.get(mail.kind)
        if kind is None:
            raise UnsendableMail(f"unknown kind of mail {mail.kind!r}")
        if mail.payload is None:
            raise UnsendableMail("the mail's data was erased")
        payload = mail.payload
        if kind.secret:
            if self._box is None:
                raise UnsendableMail(f"{mail.kind} mail is secret: sending it needs the encryption key")
            payload = self._box.decrypt(payload)
        message = kind.render(json.loads(payload), self._context)
        message["Message-ID"] = mail.message_id
        return message.as_string()
