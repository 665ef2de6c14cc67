"""The carriers a credential may hide in: what the scanner decodes or opens besides the bytes as written.

Each one can be switched off on its own (``carriers = { hex = false }`` in the configuration);
``--plain`` switches them all off. The engine decodes base64, UTF-16 and hex where they appear
in any input; the expander opens archives, mail, PDF and hex dumps, recognised by their content.
"""

from __future__ import annotations

from scanner.archive import sniff

CARRIERS = {
    "base64": "base64, URL-safe or not, wrapped or not, and base64 inside base64",
    "utf16": "UTF-16 and UTF-32 text, either byte order, with or without a byte-order mark",
    "hex": "bytes written in hex: runs, separated bytes, 0x and \\x forms; a hex dump read back whole",
    "archives": "zip, tar, gzip, bzip2, xz and zstd files, and archives inside them",
    "mail": "mail messages and mailboxes: decoded bodies, attachments, attached messages",
    "pdf": "PDF streams, inflated, and the text their pages show",
}
"""Every carrier by its name in the configuration, and what it covers."""
OPENED = frozenset({"archives", "mail", "pdf", "hex"})
"""The carriers the expander opens (hex both ways: a file that is a hex dump is read back whole)."""


def carrier_of(kind: str) -> str:
    """The carrier of a format :func:`~scanner.archive.sniff.sniff` recognises."""
    if kind in (sniff.MAIL, sniff.MBOX):
        return "mail"
    if kind == sniff.PDF:
        return "pdf"
    if kind == sniff.HEXDUMP:
        return "hex"
    return "archives"
