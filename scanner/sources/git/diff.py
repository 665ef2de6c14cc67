"""Added lines of a unified or combined diff, with their line numbers in the new file.

Used where only what a change adds matters: the staged index against HEAD,
and the commits of a pull request or push (``A..B``). Only lines that are new
in the result count; for a merge (combined diff) that means lines new against
every parent, i.e. what the merge itself wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

_ESCAPES = {ord("a"): 7, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("v"): 11, ord("f"): 12, ord("r"): 13}


@dataclass(slots=True)
class AddedLines:
    """The lines a diff adds to one file."""

    path: bytes
    numbers: list[int] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    commit: tuple[str, str, str, str] | None = None
    """(sha, author name, author email, date) for ``git log -p``; None for the index."""
    blob: str | None = None
    """The new file's blob id, from the ``index`` line (whole with ``--full-index``)."""


def parse_patch(data: bytes) -> Iterator[AddedLines]:
    """Parse ``git diff``/``git log -p`` output (``-U0`` or any context, ``--cc`` too).

    Commit headers, when present, are lines starting with ``\\x01`` followed by
    NUL-separated sha, author name, email and date.
    """
    commit: tuple[str, str, str, str] | None = None
    current: AddedLines | None = None
    parents = 1
    number = 0
    in_hunk = False
    blob: str | None = None
    for line in data.split(b"\n"):
        if line.startswith(b"\x01"):
            fields = [f.decode("utf-8", "replace") for f in line[1:].split(b"\x00")[:4]]
            fields += [""] * (4 - len(fields))  # never short from git; garbage must not raise
            commit = (fields[0], fields[1], fields[2], fields[3])
            in_hunk = False
            continue
        if line.startswith(b"diff --"):
            if current is not None and current.lines:
                yield current
            current = None
            in_hunk = False
            blob = None
            parents = 2 if line.startswith(b"diff --cc") else 1
            continue
        if not in_hunk or line.startswith(b"@@"):
            if line.startswith(b"index "):
                blob = _new_blob(line)
            elif line.startswith(b"+++ "):
                path = _diff_path(line[4:])
                current = AddedLines(path=path, commit=commit, blob=blob) if path is not None else None
            elif line.startswith(b"@@") and current is not None:
                marker = line.split(b" ", 1)[0]
                parents = len(marker) - 1
                number = _new_start(line)
                in_hunk = True
            continue
        if current is None or line.startswith(b"\\"):
            continue  # "\ No newline at end of file"
        prefix, text = line[:parents], line[parents:]
        if b"-" in prefix:
            continue  # gone from the result
        if prefix == b"+" * parents:
            current.numbers.append(number)
            current.lines.append(text.rstrip(b"\r") if text.endswith(b"\r") else text)
        number += 1
    if current is not None and current.lines:
        yield current


def _new_blob(line: bytes) -> str | None:
    """The new blob of ``index <old>..<new> <mode>`` (``index <a>,<b>..<new>`` for a merge)."""
    _, _, new = line[6:].partition(b"..")
    name = new.split(b" ", 1)[0].rstrip(b"\r")
    return name.decode("ascii") if name and name.isalnum() and name.strip(b"0") else None


def _new_start(header: bytes) -> int:
    """The first line number in the new file, from ``@@ -a,b +c,d @@`` (or ``@@@ ... @@@``)."""
    for token in header.split(b" ")[1:]:
        if token.startswith(b"+"):
            digits = token[1:].split(b",")[0]
            return int(digits) if digits.isdigit() else 1
    return 1


def _diff_path(raw: bytes) -> bytes | None:
    """The path of a ``+++ b/path`` line; None for ``/dev/null`` (a deletion)."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]  # a patch with CRLF line ends (git quotes a real trailing CR in a name)
    if raw.startswith(b'"'):
        raw = unquote(raw)
    elif raw.endswith(b"\t"):
        raw = raw[:-1]  # git marks names containing spaces with a trailing tab
    if raw == b"/dev/null":
        return None
    return raw[2:] if raw.startswith(b"b/") else raw


def unquote(quoted: bytes) -> bytes:
    """Undo git's C-style quoting of a path (``"a\\tb\\303\\251"``)."""
    body = quoted[1 : quoted.rindex(b'"')] if quoted.count(b'"') >= 2 else quoted[1:]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != 0x5C or i + 1 >= len(body):
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        octal = body[i + 1 : i + 4]
        if len(octal) == 3 and all(0x30 <= b <= 0x37 for b in octal):
            out.append(int(octal, 8) & 0xFF)
            i += 4
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return bytes(out)
