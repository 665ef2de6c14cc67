"""Base64 where configurations put it: the prefixes' encoded images as patterns, and local decoding.

Decoding every base64-looking run would be slow, but the prefixes are known. A
prefix encodes to the same few characters wherever it sits, up to its
alignment in the 3-byte groups (three cases), and its image's image is just as
fixed (nine cases, for base64 inside base64). Those fixed characters are
literals the matcher runs alongside the plain patterns; only where one matches
is anything decoded, and only the few quads that can hold a token. The checksum
still decides what a token is, so decoding never adds a false positive.

Each literal comes once as it is and once with a line break (``\\n`` or
``\\r\\n``) at each place between two of its characters, so text wrapped at 76
columns (MIME, PEM) is found too. Literals rather than one pattern with optional
line breaks: the matcher compiles them in a few milliseconds instead of a few
hundred (this runs on every commit) and scans faster.

Pure: no I/O.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rules import BASE62, TokenFormat

STANDARD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
URL_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_ANY_BYTE = frozenset(range(256))
_ALPHABET = frozenset(STANDARD) | frozenset(URL_SAFE)
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_IN_ALPHABET = bytes(1 if i in _ALPHABET else 0 for i in range(256))
_LINE_BREAK = b"\r\n"

MAX_DEPTH = 2
"""Base64 inside base64, at most: images of images are patterns too; deeper ones are not."""
QUADS = 26
"""Quads decoded from a candidate: one before its own (where an inner image's quad may start) and
enough for a 44-character token at any alignment, encoded twice (92 characters)."""
WIDE_QUADS = 32
"""Quads decoded from the image of a prefix in UTF-16 (PowerShell's ``-EncodedCommand``): one
before its own and an 88-byte token at any alignment."""
REACH_AFTER = 3 * 4 * WIDE_QUADS
"""Bytes after a candidate's end that decoding may read (a line break after every character)."""
REACH_BEFORE = 3 * 32
"""Bytes before a candidate's end: the image itself and the start of its quad."""


@dataclass(frozen=True, slots=True)
class Image:
    """One pattern: the fixed characters of a prefix's image at one alignment (and depth)."""

    format_index: int
    depth: int
    pattern: str
    chars: int
    """Characters the pattern matches (line breaks not counted)."""
    quad_position: int
    """Position of the pattern's first character in its quad (0-3)."""
    quads: int = QUADS
    """Quads decoded around it."""


def images(formats: Sequence[TokenFormat], depth: int = MAX_DEPTH, *, utf16: bool = False) -> list[Image]:
    """Every image of every prefix, at every alignment, to ``depth`` layers of base64; with ``utf16``,
    also one layer of base64 over the prefix in UTF-16LE (PowerShell's ``-EncodedCommand``)."""
    out: list[Image] = []
    for index, fmt in enumerate(formats):
        if utf16:
            wide = [[frozenset([c]) for c in fmt.prefix.encode("utf-16-le")]]
            for align in range(3):
                sets = _encode_sets(wide[0], align, frozenset(BASE62))
                out += [replace(image, quads=WIDE_QUADS) for image in _literals(index, 1, sets)]
        layer = [[frozenset([c]) for c in fmt.prefix.encode("ascii")]]
        following = frozenset(BASE62)
        for level in range(1, depth + 1):
            next_layer = []
            for plain in layer:
                for align in range(3):
                    sets = _encode_sets(plain, align, following)
                    out += _literals(index, level, sets)
                    if level < depth:
                        next_layer.append(_trimmed(sets))
            layer = next_layer
            following = _ALPHABET
    return out


def _encode_sets(plain: list[frozenset[int]], align: int, following: frozenset[int]) -> list[frozenset[int]]:
    """The sextets of ``plain`` at ``align`` unknown bytes into its group: each the set of values it
    can take; the first is the first of a quad."""
    seq = [_ANY_BYTE] * align + plain
    while len(seq) % 3:
        seq.append(following)
    out: list[frozenset[int]] = []
    for i in range(0, len(seq), 3):
        b0, b1, b2 = seq[i : i + 3]
        out.append(frozenset(b >> 2 for b in b0))
        out.append(frozenset(a << 4 | b for a in {x & 3 for x in b0} for b in {y >> 4 for y in b1}))
        out.append(frozenset(a << 2 | b for a in {x & 15 for x in b1} for b in {y >> 6 for y in b2}))
        out.append(frozenset(b & 63 for b in b2))
    return out


def _letters(sextets: frozenset[int]) -> frozenset[int]:
    return frozenset(STANDARD[v] for v in sextets) | frozenset(URL_SAFE[v] for v in sextets)


def _trimmed(sets: list[frozenset[int]]) -> list[frozenset[int]]:
    """An image as the bytes it can be, less the characters that could be anything, for the next layer."""
    start, end = 0, len(sets)
    while start < end and len(sets[start]) == 64:
        start += 1
    while end > start and len(sets[end - 1]) == 64:
        end -= 1
    return [_letters(s) for s in sets[start:end]]


def _literals(index: int, depth: int, sets: list[frozenset[int]]) -> list[Image]:
    """The longest run of fixed characters of an image, as itself and with a line break in it."""
    best = (0, 0)
    start = None
    for i, sextets in enumerate([*sets, frozenset()]):
        if len(sextets) == 1 and start is None:
            start = i
        elif len(sextets) != 1 and start is not None:
            best = max(best, (i - start, start))
            start = None
    length, first = best
    core = "".join(chr(STANDARD[next(iter(s))]) for s in sets[first : first + length])
    variants = []
    for text in {core, core.translate(str.maketrans("+/", "-_"))}:  # standard and URL-safe
        variants.append(_escaped(text))
        for cut in range(1, length):
            variants += [_escaped(text[:cut]) + brk + _escaped(text[cut:]) for brk in ("\\n", "\\r\\n")]
    return [Image(index, depth, pattern, length, first % 4) for pattern in sorted(variants)]


def _escaped(text: str) -> str:
    return "".join("\\" + c if c in "+/" else c for c in text)


def _back_over(buf: bytes | bytearray | memoryview, pos: int, count: int) -> int | None:
    """Where the ``count``-th base64 character before ``pos`` sits (line breaks skipped).

    None when the text runs out or stops being base64 first.
    """
    while count:
        pos -= 1
        if pos < 0:
            return None
        byte = buf[pos]
        if byte in _LINE_BREAK:
            continue
        if not _IN_ALPHABET[byte]:
            return None
        count -= 1
    return pos


def _quad_before(buf: bytes | bytearray | memoryview, pos: int) -> int:
    """The start of the quad before the one at ``pos``, when the text has one; else ``pos``."""
    start = _back_over(buf, pos, 4)
    return pos if start is None else start


@dataclass(frozen=True, slots=True)
class Decoded:
    """A few quads of base64 around a candidate, decoded, and where each character sat."""

    data: bytes
    positions: list[int]
    """Buffer position of each character decoded (line breaks skipped)."""
    url_safe: bool

    def position_of(self, offset: int) -> int:
        """Buffer position of the first character that encodes byte ``offset`` of :attr:`data`."""
        return self.positions[offset // 3 * 4 + offset % 3]


def decode_at(buf: bytes | bytearray | memoryview, end: int, limit: int, image: Image) -> Decoded | None:
    """Decode the quads from the one holding the image that ends at ``end`` (of ``buf[:limit]``).

    None when the text around it is not base64 after all (the quad's start is cut off).
    """
    # Back over the image's characters and to the start of its quad.
    quad_start = _back_over(buf, end, image.chars + image.quad_position)
    if quad_start is None:
        return None
    pos = _quad_before(buf, quad_start)
    # Forward over at most QUADS quads of base64 characters, skipping line breaks.
    positions: list[int] = []
    chars = bytearray()
    want = 4 * image.quads
    stop = min(limit, end + REACH_AFTER)
    while pos < stop and len(chars) < want:
        byte = buf[pos]
        if _IN_ALPHABET[byte]:
            chars.append(byte)
            positions.append(pos)
        elif byte not in _LINE_BREAK:
            break
        pos += 1
    whole = len(chars) - len(chars) % 4
    tail = len(chars) % 4
    text = bytes(chars[:whole])
    if tail >= 2:  # unpadded, or cut before the padding: the last bytes still decode
        text += bytes(chars[whole:]) + b"=" * (4 - tail)
    url_safe = b"-" in chars or b"_" in chars
    try:
        data = binascii.a2b_base64(text.translate(_TO_STANDARD) if url_safe else text)
    except binascii.Error:
        return None
    return Decoded(data, positions, url_safe)
