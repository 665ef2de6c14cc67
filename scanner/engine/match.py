"""What the engine finds in a run of bytes: no paths, no git, just offsets."""

from __future__ import annotations

from dataclasses import dataclass, field

import rules


@dataclass(slots=True, frozen=True)
class Match:
    """A checksum-valid credential at a byte offset of one input."""

    type: str
    """The token type name (``soundpiece_api_key``...)."""
    offset: int
    """Byte offset of the token's first character, from the start of the input."""
    line: int
    """1-based line number."""
    column: int
    """1-based column, in Unicode code points (invalid UTF-8 counts one per byte)."""
    secret: bytes = field(repr=False)
    line_text: bytes = field(repr=False, compare=False)
    """The line holding the token (bounded), for inline markers; never reported."""
    encoding: str | None = None
    """How the token was written, when not as itself: ``base64``, ``base64url``, ``hex``,
    ``utf-16le``, ``utf-16be``, ``utf-32le``, ``utf-32be``, outermost layer first
    (``base64/base64``); offset, line and column then point at the encoded text (in UTF-16 or
    UTF-32, line and column count the decoded text)."""

    @property
    def span(self) -> int:
        """Characters the token takes in the scanned text (its encoded length, when encoded; hex
        counted as two characters a byte, whatever separates them)."""
        size = len(self.secret)
        if self.encoding is not None:
            layers = self.encoding.split("/")
            for depth, layer in enumerate(reversed(layers), 1):  # innermost first
                if layer.startswith("base64"):
                    size = -(-size // 3) * 4
                elif layer == "hex":
                    size *= 2
                elif layer.startswith("utf-") and depth < len(layers):  # the scanned text's own: characters
                    size *= 4 if layer.startswith("utf-32") else 2
        return size

    @property
    def secret_sha256(self) -> str:
        return rules.identity(self.secret)

    @property
    def redacted(self) -> str:
        return rules.redact(self.secret)
