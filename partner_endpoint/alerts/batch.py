"""Leak report batches, the wire format every origin shares: parsing, classification and GitHub's
feedback. Pure, no I/O. An origin's :class:`~partner_endpoint.domain.origins.Fields` say which
members of an entry it fills."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import rules
from partner_endpoint.domain.origins import GITHUB, Fields

Label = Literal["true_positive", "false_positive"]


class MalformedAlerts(ValueError):
    """A signed body that is not a JSON array: answer 400. (Bad entries in an array are :class:`Rejected`.)"""


@dataclass(frozen=True, slots=True)
class Alert:
    """One reported match. ``token`` is secret: never log it, use :attr:`token_hash`."""

    token: str = field(repr=False)
    type: str
    url: str
    source: str
    token_hash: str
    is_credential: bool
    """Checksum-valid Soundpiece credential: worth a key store lookup."""
    origin: str = GITHUB.name
    """The platform that reported it."""

    @property
    def location_hash(self) -> str:
        """Identity of where the token was seen; sources compare case-insensitively.

        A place reported by two platforms is two sightings, one each. GitHub's sightings keep the
        identity they had before there were other origins, so its redeliveries of alerts recorded
        then still find their rows."""
        where = f"{self.url}\0{self.source.lower()}"
        if self.origin != GITHUB.name:
            where = f"{self.origin}\0{where}"
        return hashlib.sha256(where.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry that could not be read; the rest of its batch is processed without it."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class AlertBatch:
    alerts: list[Alert]
    rejected: list[Rejected]


class _BadEntry(ValueError):
    pass


def parse_batch(
    body: bytes,
    *,
    fields: Fields = GITHUB.fields,
    origin: str = GITHUB.name,
    types: Collection[str] | None = None,
) -> AlertBatch:
    """Parse a (verified) body: ``[{"token", "type", "url", "source"}, ...]``, members named by ``fields``.

    Entries are judged one by one, so one bad entry cannot block the revocation of the keys
    reported beside it (GitHub retries a failed batch as it is: it would fail forever). An
    entry is rejected when it is not an object, its token is not a non-empty string of valid
    text (a lone surrogate such as ``"\\ud800"`` cannot be hashed as GitHub hashed it, and is not
    ours: our formats are ASCII), or another field is not a string. Invalid text in the other
    fields is repaired (lone surrogates become U+FFFD), so the sighting is still recorded.
    ``types``: the only token types accepted (the Token Revocation API's); an entry of another is
    rejected. Members an origin adds (GitLab's ``vulnerability``) are ignored.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedAlerts("body is not JSON") from None
    if not isinstance(data, list):
        raise MalformedAlerts("body is not a JSON array")
    alerts: list[Alert] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(data):
        try:
            alerts.append(_alert(item, fields, origin, types))
        except _BadEntry as exc:
            rejected.append(Rejected(index, str(exc)))
    return AlertBatch(alerts, rejected)


def _alert(item: object, wire: Fields, origin: str, types: Collection[str] | None) -> Alert:
    if not isinstance(item, dict):
        raise _BadEntry("not an object")
    fields: dict[str, str] = {}
    members = (("token", "token", True), ("type", "type", True), ("url", wire.url, False))
    for name, member, required in (*members, ("source", wire.source, False)):
        value = item.get(member) if member is not None else None
        if value is None and not required:
            value = ""
        if not isinstance(value, str):
            raise _BadEntry(f"{member} is not a string")
        fields[name] = value
    token = fields["token"]
    if not token:
        raise _BadEntry("empty token")
    if not _is_valid_text(token):
        raise _BadEntry("token is not valid Unicode text")
    if types is not None and fields["type"] not in types:
        raise _BadEntry("type not supported")
    fields.update({name: _valid_text(fields[name]) for name in ("type", "url", "source")})
    return Alert(
        **fields,
        token_hash=rules.identity(token),
        is_credential=rules.recognise(token) is not None,
        origin=origin,
    )


def _is_valid_text(text: str) -> bool:
    """Encodable as UTF-8: JSON's ``\\uXXXX`` escapes can make lone surrogates, which are not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _valid_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD."""
    if _is_valid_text(text):
        return text
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def feedback(alerts: Sequence[Alert], issued: Iterable[str]) -> list[dict[str, str]]:
    """GitHub's feedback array, one entry per reported token; ``issued`` holds token hashes we minted."""
    issued_hashes = set(issued)
    return [
        {
            "token_hash": alert.token_hash,
            "token_type": alert.type,
            "label": "true_positive" if alert.token_hash in issued_hashes else "false_positive",
        }
        for alert in alerts
    ]
