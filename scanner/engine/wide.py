"""UTF-16 and UTF-32 text (Windows .reg exports, PowerShell's ``Out-File``, .NET resources).

A prefix written in UTF-16 or UTF-32 is its ASCII bytes interleaved with NULs, the same
bytes wherever it sits: a literal the matcher runs beside the plain patterns, like the
base64 images (:mod:`scanner.engine.encoded`). Only where one matches are the next 38
code units read, and the checksum decides. Byte-order marks need no handling: a token
is found at any alignment, with or without one.

A finding's line and column count the decoded text (a BOM is no character), and its line
text is that line as UTF-8, so an inline marker written in UTF-16 is honoured.

Pure: no I/O.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass

from rules import TokenFormat
from scanner.engine.match import Match

ENCODINGS = (("utf-16le", 2), ("utf-16be", 2), ("utf-32le", 4), ("utf-32be", 4))
"""Each encoding read, and its code unit in bytes."""
UNITS = dict(ENCODINGS)
REACH_AFTER = 4 * 40
"""Bytes after a candidate's prefix that reading its token may need (UTF-32: 38 units, and slack)."""
REACH_BEFORE = 4 * 6
"""Bytes of the prefix itself (UTF-32 ``whsec_``)."""
LINE_CONTEXT = 1 << 14
"""Characters of a token's line kept after it, for inline markers."""
BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class Image:
    """One pattern: a prefix in one encoding."""

    format_index: int
    pattern: str
    encoding: str
    unit: int
    prefix_bytes: int


def images(formats: Sequence[TokenFormat]) -> list[Image]:
    """Every prefix in every encoding of :data:`ENCODINGS`."""
    out = []
    for index, fmt in enumerate(formats):
        for encoding, unit in ENCODINGS:
            image = fmt.prefix.encode(encoding)
            pattern = "".join(f"\\x{byte:02x}" for byte in image)
            out.append(Image(index, pattern, encoding, unit, len(image)))
    return out


def token_at(
    buf: bytes | bytearray | memoryview, stop: int, end: int, image: Image, length: int
) -> tuple[int, bytes] | None:
    """(start, token as ASCII) of the ``length``-character candidate whose prefix ends at ``stop``.

    None when it runs past ``end`` or is not ASCII text in that encoding.
    """
    start = stop - image.prefix_bytes
    size = length * image.unit
    if start < 0 or start + size > end:
        return None
    try:
        text = bytes(buf[start : start + size]).decode(image.encoding)
    except UnicodeDecodeError:
        return None
    if not text.isascii():
        return None
    return start, text.encode("ascii")


def place(data: bytes | bytearray | memoryview, start: int, image: Image) -> tuple[int, int, bytes]:
    """1-based line and column of the character at byte ``start``, and its line as UTF-8.

    ``data`` is read as text in ``image.encoding`` from its first byte at ``start``'s alignment;
    undecodable units (a lone surrogate) count as one character each, a leading BOM as none.
    """
    first = start % image.unit
    before = codecs.decode(bytes(data[first:start]), image.encoding, "replace")
    if first == 0 and before.startswith(BOM):
        before = before[1:]
    line_start = before.rfind("\n") + 1
    tail_bytes = bytes(data[start : start + LINE_CONTEXT * image.unit])
    tail_bytes = tail_bytes[: len(tail_bytes) - len(tail_bytes) % image.unit]
    after = codecs.decode(tail_bytes, image.encoding, "replace").split("\n", 1)[0]
    text = (before[line_start:] + after).rstrip("\r")
    return before.count("\n") + 1, len(before) - line_start + 1, text.encode("utf-8", "replace")


def one_byte_order(matches: list[Match]) -> list[Match]:
    """Each token in UTF-16 or UTF-32 text once: ASCII text in one byte order reads the same in
    the other from one byte off (``"\\0s\\0p"`` is inside ``"s\\0p\\0"``); the reading whose code
    units are aligned in the input is kept (little-endian when neither is)."""
    wide = [m for m in matches if m.encoding in UNITS]
    if len(wide) < 2:
        return matches
    dropped = set()
    for m in wide:
        unit = UNITS[m.encoding or ""]
        for other in wide:
            twin = other is not m and other.secret == m.secret and UNITS[other.encoding or ""] == unit
            if not twin or abs(other.offset - m.offset) >= unit:
                continue
            aligned, other_aligned = m.offset % unit == 0, other.offset % unit == 0
            if other_aligned > aligned or (aligned == other_aligned and (m.encoding or "").endswith("be")):
                dropped.add(id(m))
    return [m for m in matches if id(m) not in dropped]


class Counter:
    """Lines and characters of an input read a piece at a time as text in one encoding, from its
    first byte at one alignment: the engine's second pass over a large input."""

    __slots__ = ("_decoder", "_skip", "chars", "lines", "offset")

    def __init__(self, encoding: str, alignment: int) -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)("replace")
        self._skip = alignment
        self.lines = 0
        self.chars = 0
        self.offset = 0
        """Bytes of the input passed so far."""

    def passed(self, data: bytes) -> None:
        skip = min(self._skip, len(data))
        self._skip -= skip
        text = self._decoder.decode(data[skip:])
        if self.offset == 0 and text.startswith(BOM):
            text = text[1:]
        self.offset += len(data)
        newline = text.rfind("\n")
        if newline < 0:
            self.chars += len(text)
        else:
            self.lines += text.count("\n")
            self.chars = len(text) - newline - 1
