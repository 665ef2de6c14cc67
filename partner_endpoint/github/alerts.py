"""GitHub's alert batches, the wire format: parsing, classification and feedback. Pure, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import rules
from partner_endpoint.store.leaks import Sighting

Label = Literal["true_positive", "false_positive"]


class MalformedAlerts(ValueError):
    """A signed body that is not a JSON array of alert objects: answer 400."""


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

    @property
    def location_hash(self) -> str:
        """Identity of where the token was seen; sources compare case-insensitively."""
        return hashlib.sha256(f"{self.url}\0{self.source.lower()}".encode()).hexdigest()

    @property
    def sighting(self) -> Sighting:
        """The report as the store records it (no token, only its hash)."""
        return Sighting(self.token_hash, self.type, self.url, self.source, self.location_hash)


def parse_alerts(body: bytes) -> list[Alert]:
    """Parse a (signature-verified) body: ``[{"token", "type", "url", "source"}, ...]``."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedAlerts("body is not JSON") from None
    if not isinstance(data, list):
        raise MalformedAlerts("body is not a JSON array")
    return [_alert(item, index) for index, item in enumerate(data)]


def _alert(item: object, index: int) -> Alert:
    if not isinstance(item, dict):
        raise MalformedAlerts(f"item {index} is not an object")
    fields: dict[str, str] = {}
    for name, required in (("token", True), ("type", True), ("url", False), ("source", False)):
        value = item.get(name)
        if value is None and not required:
            value = ""
        if not isinstance(value, str):
            raise MalformedAlerts(f"item {index}: {name!r} must be a string")
        fields[name] = value
    if not fields["token"]:
        raise MalformedAlerts(f"item {index}: empty token")
    token = fields["token"]
    return Alert(**fields, token_hash=rules.identity(token), is_credential=rules.recognise(token) is not None)


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
