"""A hex dump (``xxd``, ``hexdump -C``, ``od -A x -t x1z``) read back into the bytes it shows.

The engine finds a credential in a dump through its prefix's hex image (:mod:`scanner.engine.hexed`),
unless a dump line ends inside the prefix itself; a file that is a dump is therefore also read
back whole, as one member named ``dump.bin``, which is then scanned and opened like any input
(a dumped zip is an archive). The dump ends at its first line without an offset column. Bounds:
the member's bytes count like any member's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from scanner.archive.limits import Budget
from scanner.archive.members import Body, Bounded, Member, Say, admit
from scanner.engine.engine import bytes_reader
from scanner.engine.hexed import offset_column, read

NAME = b"dump.bin"


def members(body: Body, budget: Budget, say: Say) -> Iterator[Member]:
    """The one member: the bytes the dump shows."""
    text = body.whole(budget.limits.in_memory, "a hex dump")
    start = offset_column(text, 0, len(text))
    if start is None:
        return
    data = read(text, start, len(text), len(text), dump=True)
    admit(NAME, budget, say)
    yield NAME, Bounded(bytes_reader(data), budget, ()), functools.partial(bytes_reader, data)
