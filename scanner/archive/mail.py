"""Mail: a message (.eml) or a mailbox (mbox), opened into its parts, each decoded.

A body in quoted-printable or base64 is decoded whole (a soft line break, ``=`` at the end
of a line, may fall inside a credential), and every part of a multipart message is a member
named after what it is: ``attachment/deploy.zip`` (its file name), ``part2.html``. A member is
scanned like any input, so an attached zip is opened as an archive, and an attached message
(``message/rfc822``) as a message, within the nesting bound shared with archives. A mailbox's
messages are its members, ``message/3``. Parsing is the standard library's :mod:`email`;
messages are held in memory (``archive-in-memory``), a mailbox is read a message at a time.

Bounds: ``mail-parts`` MIME parts read from one message (a message with 100,000 parts is cut
there, with one warning); decoded bytes count against ``archive-member-bytes`` and
``archive-bytes``; members against ``archive-members``.
"""

from __future__ import annotations

import email.errors
import email.message
import email.parser
import email.policy
import functools
import re
from collections.abc import Callable, Iterator

from scanner.archive import sniff
from scanner.archive.limits import Budget
from scanner.archive.members import Body, Bounded, Member, Say, admit
from scanner.archive.streams import MAX_READ, ArchiveError
from scanner.engine import ReadInto
from scanner.engine.engine import bytes_reader

ENCODED = frozenset({"quoted-printable", "base64", "x-uuencode", "uuencode", "x-uue"})
"""Transfer encodings whose decoded bytes differ from the message's own (those were scanned already)."""
_FAILURES = (email.errors.MessageError, UnicodeError, LookupError)
"""What the email package raises on a malformed message or part."""
_SEPARATOR = re.compile(rb"(?:\A|\n)From [^\n]*\n")
_EXTENSIONS = {"plain": "txt", "html": "html", "calendar": "ics", "rfc822": "eml"}


def members(kind: str, body: Body, budget: Budget, say: Say) -> Iterator[Member]:
    """The parts of a message, or the messages of a mailbox."""
    if kind == sniff.MBOX:
        return _messages(body, budget, say)
    return _parts(body.whole(budget.limits.in_memory, "a message"), budget, say)


def _parts(data: bytes, budget: Budget, say: Say) -> Iterator[Member]:
    limit = budget.limits.mail_parts
    data = _cut(data, limit, say)
    try:
        message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
    except RecursionError:  # the parser recurses once per level of nested multipart
        raise ArchiveError("MIME parts nested too deeply: not opened") from None
    except _FAILURES as exc:
        raise ArchiveError(f"not a readable message ({exc})") from None
    single = not message.is_multipart()
    if single and (message.get("Content-Transfer-Encoding") or "").strip().lower() not in ENCODED:
        return  # a plain body: the message's own bytes, scanned already
    for index, part in enumerate(_leaves(message), 1):
        name = _name(part, index)
        try:
            payload = _payload(part)
        except _FAILURES as exc:
            say(name, f"cannot be decoded ({exc}): not scanned")
            continue
        if payload is None:
            continue
        admit(name, budget, say)
        yield name, Bounded(bytes_reader(payload), budget, ()), _reopen(payload)


def _leaves(message: email.message.Message) -> Iterator[email.message.Message]:
    """The parts that hold content, in order: multiparts are walked (without recursion: nesting may
    be deep), an attached message is a leaf of its own (opened as a member, nesting bounded)."""
    stack = [message]
    while stack:
        part = stack.pop()
        if part.get_content_type() != "message/rfc822" and part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack += [inner for inner in reversed(payload) if isinstance(inner, email.message.Message)]
            continue
        yield part


def _payload(part: email.message.Message) -> bytes | None:
    """The decoded bytes of a part: an attached message as a message again, others decoded."""
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner:
            return inner[0].as_bytes() if isinstance(inner[0], email.message.Message) else None
        return None
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None


def _name(part: email.message.Message, index: int) -> bytes:
    """``attachment/<file name>`` when the part names one, else ``part<index>.<extension>``."""
    try:
        filename = part.get_filename()
    except _FAILURES:
        filename = None
    if filename:
        return f"attachment/{filename}".encode("utf-8", "surrogateescape")
    subtype = part.get_content_subtype()
    extension = _EXTENSIONS.get(subtype, re.sub(r"[^a-z0-9.+-]", "", subtype)[:20] or "bin")
    return f"part{index}.{extension}".encode()


def _cut(data: bytes, limit: int, say: Say) -> bytes:
    """The message up to its ``limit``-th part: each boundary line begins ``--`` (and one more ends them)."""
    if data.count(b"\n--") <= limit + 1:
        return data
    at = -1
    for _ in range(limit + 1):
        at = data.index(b"\n--", at + 1)
    say(None, f"more than {limit:,} MIME parts (mail-parts): the rest is not decoded")
    return data[:at]


def _messages(body: Body, budget: Budget, say: Say) -> Iterator[Member]:
    """The messages of a mailbox, read a piece at a time, each up to ``archive-in-memory`` bytes."""
    reader = body.reader()
    if reader is None:
        raise ArchiveError("cannot be read twice (standard input larger than a chunk): not opened")
    limit = budget.limits.in_memory
    pending = b""
    count = 0
    while True:
        piece = _read(reader)
        pending += piece
        starts = [m.start() + (pending[m.start()] == 0x0A) for m in _SEPARATOR.finditer(pending)]
        complete = starts if not piece else starts[:-1]
        for start, end in zip(complete, [*starts[1:], len(pending)], strict=False):
            count += 1
            yield _message(pending[start:end], count, budget, say)
        if not piece:
            return
        pending = pending[starts[-1] :] if starts else pending
        if len(pending) > limit:
            count += 1
            say(f"message/{count}".encode(), f"over {limit >> 20} MiB (archive-in-memory): cut there")
            yield _message(pending[:limit], count, budget, say)
            pending = _skip_to_next(reader, pending[limit:])


def _message(data: bytes, count: int, budget: Budget, say: Say) -> Member:
    name = f"message/{count}".encode()
    admit(name, budget, say)
    text = data.split(b"\n", 1)[1] if data.startswith(b"From ") and b"\n" in data else data
    return name, Bounded(bytes_reader(text), budget, ()), _reopen(text)


def _skip_to_next(reader: ReadInto, rest: bytes) -> bytes:
    """Read past the rest of a message too large to hold, to the next separator line."""
    while True:
        found = _SEPARATOR.search(rest, 1)
        if found is not None:
            return rest[found.start() + 1 :]
        piece = _read(reader)
        if not piece:
            return b""
        rest = rest[-200:] + piece


def _read(reader: ReadInto) -> bytes:
    buffer = bytearray(MAX_READ)
    n = reader(memoryview(buffer))
    return bytes(buffer[:n])


def _reopen(data: bytes) -> Callable[[], ReadInto]:
    return functools.partial(bytes_reader, data)
