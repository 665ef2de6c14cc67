"""Soundpiece credential formats: the one implementation of ``docs/token-format.md``."""

from rules.checksum import BASE62, checksum
from rules.formats import (
    API_KEY,
    FORMATS,
    WEBHOOK_SECRET,
    TokenFormat,
    format_named,
    format_of,
    identity,
    is_valid_body,
    recognise,
    redact,
)
from rules.minting import KeyPair, mint_pair

__all__ = [
    "API_KEY",
    "BASE62",
    "FORMATS",
    "WEBHOOK_SECRET",
    "KeyPair",
    "TokenFormat",
    "checksum",
    "format_named",
    "format_of",
    "identity",
    "is_valid_body",
    "mint_pair",
    "recognise",
    "redact",
]
