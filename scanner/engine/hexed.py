"""Hex: a credential printed as its bytes in hex (debug logs, byte-slice prints, hex dumps).

Like base64 (:mod:`scanner.engine.encoded`), a prefix's hex image is fixed text: ``73706b5f``
for ``spk_``, in lower or upper case, as one run or byte by byte (``73 70 6b 5f``,
``73:70:...``, ``0x73, 0x70, ...``, ``\\x73\\x70...``, xxd's groups ``7370 6b5f``). Those images
are literals the matcher runs beside the plain patterns; only where one matches is the text
after it read, leniently: separators between bytes, line breaks, and in a hex dump (``xxd``,
``hexdump -C``, ``od -A x -t x1z``) the offset column that starts each line and the printable
column that ends it. The checksum decides, so reading too much never reports a look-alike.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rules import TokenFormat
from scanner.engine.patterns import literal

SEPARATED = ("", " ", ":", "-", "\\x", "0x, ", "0x,", "0x ")
"""How the bytes of an image are written: one run, or each byte after a separator. ``0x``
forms put ``0x`` before every byte (``0x73, 0x70``); ``\\x`` likewise (``\\x73\\x70``)."""
REACH_AFTER = 6 * 44 + 3 * 20
"""Characters after an image that reading its token may need: ``0x73, `` per byte, and the offset
columns of the dump lines it may cross."""
DUMP_LINE = 100
"""Characters looked back from an image for the start of its line (a hex dump's line is shorter)."""
REACH_BEFORE = DUMP_LINE + 6 * 6
_VALUE = bytes(int(chr(i), 16) if chr(i) in "0123456789abcdefABCDEF" else 255 for i in range(256))
_SKIPPED = frozenset(b" \t,:;-")
_LINE_BREAK = frozenset(b"\r\n")
_GUTTER = frozenset(b"|>")


@dataclass(frozen=True, slots=True)
class Image:
    """One pattern: a prefix's bytes in hex, written one way."""

    format_index: int
    pattern: str
    chars: int
    """Characters the pattern matches."""


def images(formats: Sequence[TokenFormat]) -> list[Image]:
    """Every prefix in every way of :data:`SEPARATED`, lower and upper case, and in xxd's groups."""
    out = []
    for index, fmt in enumerate(formats):
        prefix = fmt.prefix.encode("ascii")
        for upper in (False, True):
            pairs = [f"{byte:02X}" if upper else f"{byte:02x}" for byte in prefix]
            texts = set()
            for way in SEPARATED:
                if way.startswith("0x"):
                    texts.add("0x" + way[2:].join("0x" + pair for pair in pairs)[2:])
                elif way == "\\x":
                    texts.add("".join("\\x" + pair for pair in pairs))
                else:
                    texts.add(way.join(pairs))
            for first in (0, 1):  # xxd: two bytes a group, the prefix starting a group or inside one
                groups = pairs[:first] + ["".join(pairs[i : i + 2]) for i in range(first, len(pairs), 2)]
                texts.add(" ".join(groups))
            out += [Image(index, literal(text.encode("ascii")), len(text)) for text in sorted(texts)]
    return out


def decode_at(
    buf: bytes | bytearray | memoryview, stop: int, end: int, image: Image, want: int
) -> tuple[int, bytes]:
    """(start of the image, up to ``want`` bytes read from it) for the image that ends at ``stop``."""
    start = stop - image.chars
    line_start = _line_start(buf, start)
    dump = line_start is not None and offset_column(buf, line_start, start) is not None
    return start, read(buf, start, min(end, stop + REACH_AFTER), want, dump=dump)


def read(buf: bytes | bytearray | memoryview, pos: int, limit: int, want: int, *, dump: bool) -> bytes:
    """Up to ``want`` bytes written in hex from ``pos``, leniently (see the module's docstring);
    ``dump``: the text is a hex dump, whose lines start with an offset column."""
    out = bytearray()
    width = 0  # the longest run of hex digits on this line: 2 in hexdump -C, 4 in xxd
    run = 0
    spaces = 0
    while pos < limit and len(out) < want:
        byte = buf[pos]
        if _VALUE[byte] < 16 and pos + 1 < limit and _VALUE[buf[pos + 1]] < 16:
            out.append(_VALUE[byte] << 4 | _VALUE[buf[pos + 1]])
            run += 2
            width = max(width, run)
            spaces = 0
            pos += 2
            continue
        run = 0
        if byte in _LINE_BREAK:
            pos = _next_line(buf, pos, limit)
            if dump:
                after = offset_column(buf, pos, limit)
                if after is None:
                    break  # the dump has ended
                pos = after
            width = spaces = 0
            continue
        if _is_0x(buf, pos, limit) or (byte == 0x5C and pos + 1 < limit and buf[pos + 1] in b"xX"):
            pos += 2
            continue
        if byte in _SKIPPED:
            spaces = spaces + 1 if byte == 0x20 else 0
            pos += 1
            if dump and spaces == 2 and (width > 2 or (pos < limit and buf[pos] in _GUTTER)):
                pos = _end_of_line(buf, pos, limit)  # the printable column: not hex
            continue
        if dump and byte in _GUTTER:
            pos = _end_of_line(buf, pos, limit)
            continue
        break
    return bytes(out)


def _is_0x(buf: bytes | bytearray | memoryview, pos: int, limit: int) -> bool:
    return buf[pos] == 0x30 and pos + 1 < limit and buf[pos + 1] in b"xX"


def _line_start(buf: bytes | bytearray | memoryview, pos: int) -> int | None:
    """The start of ``pos``'s line, if it is at most :data:`DUMP_LINE` characters back."""
    floor = max(0, pos - DUMP_LINE)
    while pos > floor and buf[pos - 1] not in _LINE_BREAK:
        pos -= 1
    return pos if pos == 0 or buf[pos - 1] in _LINE_BREAK else None


def _next_line(buf: bytes | bytearray | memoryview, pos: int, limit: int) -> int:
    while pos < limit and buf[pos] in _LINE_BREAK:
        pos += 1
    return pos


def _end_of_line(buf: bytes | bytearray | memoryview, pos: int, limit: int) -> int:
    while pos < limit and buf[pos] not in _LINE_BREAK:
        pos += 1
    return pos


def offset_column(buf: bytes | bytearray | memoryview, pos: int, limit: int) -> int | None:
    """Where a hex dump line's bytes start, when ``pos`` starts one: 4 or more hex digits and a
    colon (xxd), or 6 or more and spaces (hexdump -C, od); None otherwise."""
    digits = pos
    while digits < limit and _VALUE[buf[digits]] < 16:
        digits += 1
    count = digits - pos
    if digits >= limit:
        return None
    if count >= 4 and buf[digits] == 0x3A:  # xxd: "00000010: 3031 ..."
        return digits + 1
    if count >= 6 and buf[digits] == 0x20:
        return digits
    return None
