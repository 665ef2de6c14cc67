"""PDF: its streams, inflated, and the text its pages show.

Text in a PDF sits in content streams, compressed with FlateDecode (zlib, no gzip header) or
not at all, as string operands: ``(spk_...) Tj``, or pieces of a ``TJ`` array with kerning
between them (``[(spk_0123) -20 (4567...)] TJ``), which split a word anywhere. A content
stream's member is that text, its strings joined (``text/12``, after the object number); any
other stream (object streams with the document's strings, metadata, embedded files) is a
member as inflated (``stream/12``), scanned and opened like any input.

Not decoded: images (DCT, JPX, CCITT, JBIG2: no text), LZW and run-length streams (old and
rare), encrypted documents (one warning), and text in fonts whose codes are glyph numbers
(Identity-H with a ToUnicode map): reading those takes the font's map, a parser of its own.
A malformed PDF is at worst one warning. Bounds: streams count as members
(``archive-members``), inflated bytes as members' bytes (``archive-member-bytes``,
``archive-bytes``, ``archive-ratio`` against the stream's own size); the PDF is held in
memory (``archive-in-memory``).
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Iterator

from scanner.archive.limits import Budget
from scanner.archive.members import Body, Bounded, Member, Say, admit
from scanner.engine import ReadInto
from scanner.engine.engine import bytes_reader

_STREAM = re.compile(rb"\bstream\r?\n")
_NUMBER = re.compile(rb"(\d+)\s+\d+\s+$")
_LENGTH = re.compile(rb"/Length\s+(\d+)(?!\s+\d+\s+R)")
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]*\]|/[A-Za-z0-9]+)")
_NAME = re.compile(rb"/([A-Za-z0-9]+)")
_SUPPORTED = frozenset({b"FlateDecode", b"Fl"})
_TEXT_SHOWN = re.compile(rb"\bT[Jj]\b|['\"]\s")
_ENCRYPTED = re.compile(rb"/Encrypt\s*(?:\d+\s+\d+\s+R|<<)")
DICTIONARY = 4096
"""Bytes looked back from a ``stream`` keyword for its object's dictionary."""
PIECE = 1 << 16
"""Inflated bytes produced at a time."""
_ERRORS = (zlib.error,)


def members(body: Body, budget: Budget, say: Say) -> Iterator[Member]:
    """The streams of a PDF, each inflated, content streams as the text they show."""
    limits = budget.limits
    data = body.whole(limits.in_memory, "a PDF")
    if _ENCRYPTED.search(data):
        say(None, "encrypted: its streams are not decoded")
        return
    pos = 0
    while (found := _STREAM.search(data, pos)) is not None:
        start = found.end()
        head = data[max(0, found.start() - DICTIONARY) : found.start()]
        at = head.rfind(b"obj")
        dictionary = head[at + 3 :] if at >= 0 else head
        number_found = _NUMBER.search(head[max(0, at - 40) : at]) if at >= 0 else None
        number = number_found.group(1).decode() if number_found else str(found.start())
        end = _stream_end(data, start, dictionary)
        pos = max(end, start)
        raw = data[start:end]
        filter_found = _FILTER.search(dictionary)
        filters = [m.group(1) for m in _NAME.finditer(filter_found.group(1))] if filter_found else []
        if any(name not in _SUPPORTED for name in filters):
            continue  # an image or a filter not read here: no text to find
        plain = raw
        name = f"stream/{number}".encode()
        if filters:
            admit(name, budget, say)
            reader = Bounded(_inflate(raw), budget, _ERRORS, compressed=len(raw))
            plain = _read_all(reader, min(limits.member_bytes, limits.in_memory))
            if reader.stopped:
                say(name, reader.stopped)
        if b"BT" in plain and _TEXT_SHOWN.search(plain):
            name, plain = f"text/{number}".encode(), shown_text(plain)
            if not filters:
                admit(name, budget, say)
        elif not filters:
            continue  # an uncompressed stream that shows no text: its bytes are the PDF's own
        yield name, bytes_reader(plain), functools.partial(bytes_reader, plain)


def _stream_end(data: bytes, start: int, dictionary: bytes) -> int:
    """Where a stream's data ends: after ``/Length`` bytes when ``endstream`` follows there, else at
    the next ``endstream`` (a wrong or indirect length is common)."""
    length = _LENGTH.search(dictionary)
    if length is not None:
        end = start + int(length.group(1))
        if data[end : end + 12].lstrip(b"\r\n ").startswith(b"endstream"):
            return end
    end = data.find(b"endstream", start)
    return len(data) if end < 0 else end


def _inflate(raw: bytes) -> ReadInto:
    """A reader of the inflated bytes of a FlateDecode stream; a stream cut short ends where it is cut."""
    state = zlib.decompressobj()
    left = raw

    def read(view: memoryview) -> int:
        nonlocal left
        while True:
            if state.eof or (not left and not state.unconsumed_tail):
                return 0
            out = state.decompress(state.unconsumed_tail or left, min(len(view), PIECE))
            if not state.unconsumed_tail:
                left = b""
            if out:
                view[: len(out)] = out
                return len(out)

    return read


def _read_all(reader: ReadInto, limit: int) -> bytes:
    """What ``reader`` gives, up to ``limit`` bytes (a stream is held whole to find its text)."""
    out = bytearray()
    buffer = bytearray(PIECE)
    view = memoryview(buffer)
    while len(out) < limit and (n := reader(view[: min(PIECE, limit - len(out))])):
        out += view[:n]
    return bytes(out)


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}
_WHITESPACE = b" \t\r\n\f\x00"
_DELIMITERS = b"()<>[]{}/%"


def shown_text(content: bytes) -> bytes:
    """The strings a content stream shows, each text object (``BT`` ... ``ET``) on a line of its own,
    its strings joined as they are (a ``TJ`` array's pieces, with the kerning between them dropped)."""
    out = bytearray()
    strings: list[bytes] = []
    pos, size = 0, len(content)
    while pos < size:
        byte = content[pos]
        if byte == 0x28:  # (
            text, pos = _literal(content, pos + 1)
            strings.append(text)
        elif byte == 0x3C and content[pos + 1 : pos + 2] != b"<":  # <hex>
            end = content.find(b">", pos)
            end = size if end < 0 else end
            digits = bytes(c for c in content[pos + 1 : end] if chr(c) in "0123456789abcdefABCDEF")
            strings.append(bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode()))
            pos = end + 1
        elif byte == 0x25:  # % comment
            end = content.find(b"\n", pos)
            pos = size if end < 0 else end
        elif byte == 0x2F:  # /Name: an operand
            pos += 1
            while pos < size and content[pos] not in _WHITESPACE and content[pos] not in _DELIMITERS:
                pos += 1
        elif byte in _WHITESPACE or byte in _DELIMITERS:
            pos += 1
        else:
            end = pos
            while end < size and content[end] not in _WHITESPACE and content[end] not in _DELIMITERS:
                end += 1
            word = content[pos:end]
            if word[:1] in b"0123456789+-.":
                pos = end  # a number: an operand (kerning in a TJ array)
                continue
            if word in (b"Tj", b"TJ", b"'", b'"'):
                out += b"".join(strings)
            elif word == b"ET":
                out += b"\n"
            elif word == b"ID":  # an inline image's data, to EI
                found = content.find(b"EI", end)
                end = size if found < 0 else found + 2
            strings = []  # an operator uses up its operands
            pos = end
    return bytes(out)


def _literal(content: bytes, pos: int) -> tuple[bytes, int]:
    """A literal string's bytes, from just after its ``(``, and the index after its ``)``."""
    out = bytearray()
    depth = 1
    size = len(content)
    while pos < size:
        byte = content[pos]
        if byte == 0x5C and pos + 1 < size:  # backslash
            following = content[pos + 1]
            if following in _ESCAPES:
                out += _ESCAPES[following]
                pos += 2
            elif 0x30 <= following <= 0x37:  # up to three octal digits
                end = pos + 1
                while end < min(pos + 4, size) and 0x30 <= content[end] <= 0x37:
                    end += 1
                out.append(int(content[pos + 1 : end], 8) & 0xFF)
                pos = end
            elif following in b"\r\n":  # a line continued
                pos += 2 + (following == 0x0D and content[pos + 2 : pos + 3] == b"\n")
            else:
                out.append(following)
                pos += 2
            continue
        if byte == 0x28:
            depth += 1
        elif byte == 0x29:
            depth -= 1
            if not depth:
                return bytes(out), pos + 1
        out.append(byte)
        pos += 1
    return bytes(out), pos
