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
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rules import TokenFormat
from scanner.engine.patterns import literal

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
    return [
        Image(index, literal(fmt.prefix.encode(encoding)), encoding, unit, len(fmt.prefix) * unit)
        for index, fmt in enumerate(formats)
        for encoding, unit in ENCODINGS
    ]


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


class Placer:
    """Places tokens in the text of one window: 1-based line and column of a token's first
    character, and its line as UTF-8.

    The window is read as text in the token's encoding from its first byte at the token's
    alignment; undecodable units (a lone surrogate) count as one character each, a leading BOM as
    none. Tokens come in order, so each is counted on from the previous one of its encoding and
    alignment: a window full of tokens costs one pass, not one each.
    """

    __slots__ = ("_counted", "_data")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = data
        self._counted: dict[tuple[str, int], tuple[int, int, int]] = {}
        """(encoding, alignment) -> (byte position, newlines before it, characters since the last)."""

    def place(self, start: int, image: Image) -> tuple[int, int, bytes]:
        data, unit = self._data, image.unit
        first = start % unit
        key = (image.encoding, first)
        pos, lines, chars = self._counted.get(key, (first, 0, 0))
        if start < pos:
            pos, lines, chars = first, 0, 0
        text = codecs.decode(bytes(data[pos:start]), image.encoding, "replace")
        if pos == first == 0 and text.startswith(BOM):
            text = text[1:]
        newline = text.rfind("\n")
        if newline < 0:
            chars += len(text)
        else:
            lines += text.count("\n")
            chars = len(text) - newline - 1
        self._counted[key] = (start, lines, chars)
        return lines + 1, chars + 1, self._line(start, image, chars)

    def _line(self, start: int, image: Image, chars: int) -> bytes:
        """The token's line as UTF-8, at most :data:`LINE_CONTEXT` characters either side of it
        (``chars``: those of the line before it)."""
        unit, encoding = image.unit, image.encoding
        keep = min(chars, LINE_CONTEXT) * unit  # as many units, at most as many characters: this line's
        head = codecs.decode(bytes(self._data[start - keep : start]), encoding, "replace").lstrip(BOM)
        tail = bytes(self._data[start : start + LINE_CONTEXT * unit])
        tail = tail[: len(tail) - len(tail) % unit]
        after = codecs.decode(tail, encoding, "replace").split("\n", 1)[0]
        return (head + after).rstrip("\r").encode("utf-8", "replace")


T = TypeVar("T")


def one_byte_order(
    readings: list[T], key: Callable[[T], tuple[int, bytes, str | None]], *, aligned: bool = True
) -> list[T]:
    """Each token in UTF-16 or UTF-32 text once: ASCII text in one byte order reads the same in
    the other from one byte off (``"\\0s\\0p"`` is inside ``"s\\0p\\0"``); the reading whose code
    units are aligned is kept, little-endian when neither is or when offsets say nothing of
    alignment (``aligned=False``: a piece of decoded base64). ``key``: a reading's offset, token
    and encoding (readings in no encoding of :data:`UNITS` are kept as they are)."""
    twins: dict[tuple[bytes, int], list[tuple[int, str, int]]] = {}  # by token and unit: readings to compare
    for index, reading in enumerate(readings):
        offset, token, encoding = key(reading)
        if encoding in UNITS:
            twins.setdefault((token, UNITS[encoding]), []).append((offset, encoding, index))
    dropped = set()
    for (_, unit), found in twins.items():
        found.sort()
        for one, other in itertools.pairwise(found):  # twins sit next to each other
            if other[0] - one[0] >= unit or one[1] == other[1]:
                continue
            one_aligned, other_aligned = aligned and one[0] % unit == 0, aligned and other[0] % unit == 0
            if one_aligned != other_aligned:
                dropped.add((other if one_aligned else one)[2])
            else:
                dropped.add((one if one[1].endswith("be") else other)[2])
    return [r for i, r in enumerate(readings) if i not in dropped] if dropped else readings


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
