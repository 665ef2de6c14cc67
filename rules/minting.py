"""Minting of the credential pair a Soundpiece customer receives."""

from __future__ import annotations

from dataclasses import dataclass

from rules.formats import API_KEY, WEBHOOK_SECRET


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An API key and its webhook signing secret; shown once, then only hashed."""

    api_key: str
    signing_secret: str

    def __repr__(self) -> str:  # never print the secrets by accident
        return "KeyPair(api_key=<redacted>, signing_secret=<redacted>)"


def mint_pair() -> KeyPair:
    """Mint a fresh API key and signing secret together."""
    return KeyPair(api_key=API_KEY.mint(), signing_secret=WEBHOOK_SECRET.mint())
