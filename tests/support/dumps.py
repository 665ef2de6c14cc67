"""Hex dumps laid out as ``xxd`` and ``hexdump -C`` print them, for the scanner's tests and the
directory benchmark's carriers (neither tool need be installed)."""

from __future__ import annotations


def xxd(data: bytes) -> str:
    """``xxd``'s layout: offset, eight groups of two bytes, the printable column."""
    lines = []
    for at in range(0, len(data), 16):
        row = data[at : at + 16]
        groups = " ".join(row[i : i + 2].hex() for i in range(0, len(row), 2))
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{at:08x}: {groups:<39}  {shown}")
    return "\n".join(lines) + "\n"


def hexdump_c(data: bytes) -> str:
    """``hexdump -C``'s layout: offset, 16 bytes in two halves, ``|printable|``."""
    lines = []
    for at in range(0, len(data), 16):
        row = data[at : at + 16]
        halves = [" ".join(f"{b:02x}" for b in row[:8]), " ".join(f"{b:02x}" for b in row[8:])]
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{at:08x}  {halves[0]:<23}  {halves[1]:<23}  |{shown}|")
    return "\n".join(lines) + "\n"
