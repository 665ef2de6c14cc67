"""The credential formats, as data.

This module is the one definition of what a Soundpiece credential looks like.
The scanner compiles :attr:`TokenFormat.pattern`, GitHub receives it at
onboarding, and the key store mints and checks tokens with the same objects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rules.checksum import BASE62, CHECKSUM_LENGTH, checksum, is_base62

RANDOM_LENGTH = 32
_BODY_LENGTH = RANDOM_LENGTH + CHECKSUM_LENGTH
_ALPHABET = BASE62.decode("ascii")


@dataclass(frozen=True, slots=True)
class TokenFormat:
    """One credential type: ``prefix`` + 32 random + 6 checksum characters."""

    name: str
    """GitHub's token type name (the ``type`` field of an alert)."""
    prefix: str
    description: str

    @property
    def length(self) -> int:
        return len(self.prefix) + _BODY_LENGTH

    @property
    def pattern(self) -> str:
        """The regular expression handed to scanners and to GitHub."""
        return f"{self.prefix}[0-9A-Za-z]{{{_BODY_LENGTH}}}"

    def mint(self) -> str:
        """A fresh token drawn with :mod:`secrets` (about 190 bits)."""
        import secrets  # deferred: the scanner never mints, and starts on every commit

        random_part = "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_LENGTH))
        return self.prefix + random_part + checksum(random_part.encode("ascii")).decode("ascii")

    def is_valid(self, token: str | bytes) -> bool:
        """True when ``token`` has this prefix, the right length and a matching checksum."""
        raw = token.encode("ascii", "replace") if isinstance(token, str) else bytes(token)
        prefix = self.prefix.encode("ascii")
        if len(raw) != self.length or not raw.startswith(prefix):
            return False
        return is_valid_body(raw[len(prefix) :])


def is_valid_body(body: bytes) -> bool:
    """True when ``body`` is 32 base62 characters followed by their checksum."""
    if len(body) != _BODY_LENGTH or not is_base62(body):
        return False
    return checksum(body[:RANDOM_LENGTH]) == body[RANDOM_LENGTH:]


API_KEY = TokenFormat(
    name="soundpiece_api_key",
    prefix="spk_",
    description="Soundpiece API key",
)
WEBHOOK_SECRET = TokenFormat(
    name="soundpiece_webhook_secret",
    prefix="whsec_",
    description="Soundpiece webhook signing secret",
)
FORMATS: tuple[TokenFormat, ...] = (API_KEY, WEBHOOK_SECRET)
_BY_NAME = {fmt.name: fmt for fmt in FORMATS}


def format_named(name: str) -> TokenFormat | None:
    """The format whose GitHub type name is ``name``, or None."""
    return _BY_NAME.get(name)


def format_of(token: str | bytes) -> TokenFormat | None:
    """The format a token claims by its prefix (checksum not checked)."""
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    for fmt in FORMATS:
        if text.startswith(fmt.prefix):
            return fmt
    return None


def recognise(token: str | bytes) -> TokenFormat | None:
    """The format of ``token`` if it is a checksum-valid credential, else None."""
    fmt = format_of(token)
    return fmt if fmt is not None and fmt.is_valid(token) else None


def identity(token: str | bytes) -> str:
    """A token's identity: lowercase hex SHA-256 of its bytes."""
    raw = token.encode("utf-8") if isinstance(token, str) else token
    return hashlib.sha256(raw).hexdigest()


def redact(token: str | bytes) -> str:
    """A display form that never reveals the secret: prefix, two, ellipsis, last three."""
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    fmt = format_of(text)
    head = len(fmt.prefix) + 2 if fmt else 2
    if len(text) <= head + 3:
        return text[: min(len(text), head)] + "…"
    return f"{text[:head]}…{text[-3:]}"
