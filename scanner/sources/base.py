"""What every source gives the runner: units of work, each opened into inputs for the engine.

A source is where bytes come from: files and directories, standard input, the
blobs of a repository's history, the lines a change adds. The runner
(:mod:`scanner.run`) drives each one the same way, in the spirit of gitleaks'
``sources/``:

1. :meth:`Source.units`, in the main process: units of work, listed lazily
   and picklable (a batch of paths, a run of blobs, one changed file).
2. :meth:`Source.open`, in whichever process takes a unit: a generator of
   :data:`Input`, a key naming each input and a reader the engine pulls bytes
   from. When the engine fails reading an input, the runner throws the error
   back in at the ``yield``: the source decides whether that skips one input
   (a file that vanished), ends the unit (a broken blob stream) or ends the
   scan (re-raised), and what to warn.
3. :meth:`Source.finish`, in each process that opened units, after its last:
   ends what :meth:`Source.open` kept from one unit to the next (a git reader).
4. :meth:`Source.findings`, back in the main process: the inputs that held
   matches (:data:`Hit`), placed as findings (a path; a commit, author, date),
   inside the archive member the hit names, if any.
5. :meth:`Source.close`: releases whatever :meth:`units` started, always.

Inputs, not sources, are what the runner's expander (:mod:`scanner.archive`)
takes apart into members, so every source's bytes pass through it; base64 is
decoded by the engine itself.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any, Protocol

from scanner.engine import Match, ReadInto
from scanner.findings import Finding
from scanner.stats import ScanStats

Warn = Callable[[str], None]

Input = tuple[object, ReadInto, Callable[[], ReadInto] | None]
"""(key, reader, reopen): the key names the input to its source (a path, a blob id);
``reopen``, when the input can be read again from its start, spares the engine
counting lines in every chunk of a large input. A plain tuple: one per file."""

Opened = Generator[Input, None, None]
"""What :meth:`Source.open` returns: a generator, so that the runner can throw a read error in."""

Hit = tuple[object, tuple[bytes, ...], list[Match]]
"""An input's key, the names of the archive member the matches are in (outermost first;
``()`` for the input's own bytes), and the engine's matches."""


class Source(Protocol):
    unit_name: str
    """What the progress line counts: ``files`` or ``objects``."""
    total: tuple[int, int] | None
    """(inputs, bytes) to expect, once :meth:`units` knows; None when it cannot (a walk)."""
    short_read_is_end: bool
    """True when a short read can only mean the end (regular files): one read fewer each."""
    pool_after: int | None
    """Start worker processes once the source has listed more units than this; None: never."""

    def units(self, stats: ScanStats, warn: Warn) -> Iterable[Any]:
        """The units of work; what listing skips is counted in ``stats`` and warned."""
        ...

    def open(self, unit: Any, stats: ScanStats, warn: Warn) -> Opened:
        """The inputs of one unit, each open until the engine has read it."""
        ...

    def finish(self, stats: ScanStats, warn: Warn) -> None:
        """End what :meth:`open` keeps for the next unit, in this process (after its last unit)."""
        ...

    def findings(self, hits: list[Hit], stats: ScanStats, warn: Warn) -> list[Finding]:
        """The findings of the inputs that held matches."""
        ...

    def label(self, key: Any) -> str:
        """How warnings name an input (about an archive inside it)."""
        ...

    def close(self) -> None:
        """Stop what :meth:`units` started (called whether the scan ended or failed)."""
        ...
