"""What an input is, from its first bytes: the magic numbers of the formats we open.

Called for every input, so it costs almost nothing when the answer is "plain": one
byte looked up, one five-byte comparison. Mail has no magic number: a message is
recognised by its first line, a header that mail carries (``Received:``, ``From:``,
``MIME-Version:``...), and one more mail header or a MIME one in the lines after it;
a mailbox by its ``From `` separator line followed by a header; a hex dump by an offset column
and hex on its first line.
"""

from __future__ import annotations

import re

ZIP, TAR, GZIP, BZIP2, XZ, ZSTD = "zip", "tar", "gzip", "bzip2", "xz", "zstd"
MAIL, MBOX, PDF, HEXDUMP = "mail", "mbox", "pdf", "hexdump"
ARCHIVES = frozenset({ZIP, TAR, GZIP, BZIP2, XZ, ZSTD})

_STARTS = {
    ord("P"): ((b"PK\x03\x04", ZIP), (b"PK\x05\x06", ZIP)),
    0x1F: ((b"\x1f\x8b\x08", GZIP),),
    ord("B"): ((b"BZh", BZIP2),),
    0xFD: ((b"\xfd7zXZ\x00", XZ),),
    0x28: ((b"\x28\xb5\x2f\xfd", ZSTD),),
    ord("%"): ((b"%PDF-", PDF),),
}
_TAR_MAGIC = slice(257, 262)

_MAIL_HEADERS = (
    b"return-path:",
    b"received:",
    b"delivered-to:",
    b"from:",
    b"to:",
    b"cc:",
    b"date:",
    b"subject:",
    b"message-id:",
    b"mime-version:",
    b"content-type:",
    b"reply-to:",
    b"sender:",
    b"dkim-signature:",
    b"arc-seal:",
    b"authentication-results:",
    b"x-mailer:",
    b"user-agent:",
    b"in-reply-to:",
    b"references:",
)
"""Headers a message's header block is made of; a first line that is none of them is no mail."""
_MAIL_HEADER_SET = frozenset(_MAIL_HEADERS)
_LONGEST_HEADER = max(map(len, _MAIL_HEADERS))
_MAIL_FIRST = frozenset(header[0] for header in _MAIL_HEADERS) | frozenset(
    header[0] - 32 for header in _MAIL_HEADERS
)


def sniff(head: bytes | bytearray, size: int) -> str | None:
    """The format of an input whose first bytes are ``head[:size]``, or None for anything else."""
    if size < 4:
        return None
    first = head[0]
    starts = _STARTS.get(first)
    if starts is not None:
        for magic, kind in starts:
            if len(magic) <= size and head[: len(magic)] == magic:
                if kind == BZIP2 and not (0x31 <= head[3] <= 0x39):  # "BZh" then the block size 1-9
                    return None
                return kind
    if size >= 262 and head[_TAR_MAGIC] == b"ustar":
        return TAR
    if first in _MAIL_FIRST and _maybe_mail(head, size) and (mail := _mail(bytes(head[: min(size, 512)]))):
        return mail
    if first == 0x30 and head[1] == head[2] == head[3] == 0x30:  # "0000": a dump's first offset
        return _hexdump(bytes(head[: min(size, 128)]))
    return None


def _maybe_mail(head: bytes | bytearray, size: int) -> bool:
    """Whether the first line may be a mail header (or an mbox separator), from its first bytes only:
    most text files stop here."""
    if head[:5] == b"From ":
        return True
    colon = head.find(b":", 0, min(size, _LONGEST_HEADER))
    return colon > 0 and bytes(head[: colon + 1]).lower() in _MAIL_HEADER_SET


_DUMP_LINE = re.compile(rb"0{4,16}(?::| ) ?[ ]?(?:[0-9a-fA-F]{2,8} {1,2}){3}")
"""A dump's first line: offset zero (``00000000:`` in xxd, ``00000000  `` in hexdump -C, ``0000000 ``
in od), then groups of hex; a table of numbers rarely starts at zero."""


def _hexdump(head: bytes) -> str | None:
    """HEXDUMP when the first line is a dump's: an offset column at zero, then groups of hex."""
    return HEXDUMP if _DUMP_LINE.match(head) else None


def _mail(head: bytes) -> str | None:
    """MAIL or MBOX when ``head`` starts a message or a mailbox, else None."""
    lines = head.split(b"\n")
    if lines[0].startswith(b"From ") and len(lines) > 2:  # mbox: "From sender date", then headers
        return MBOX if _mail(b"\n".join(lines[1:])) == MAIL else None
    known = 0
    for line in lines[:-1]:  # the last may be cut short
        line = line.rstrip(b"\r").lower()
        if not line:
            break
        if line[:1] in b" \t":  # a folded header goes on
            continue
        if not line.startswith(_MAIL_HEADERS):
            if known == 0 or b":" not in line:
                return None
            continue
        known += 1
        if known >= 2 or line.startswith((b"mime-version:", b"content-type:")):
            return MAIL
    return None
