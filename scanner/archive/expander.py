"""Opens an input that is an archive into its members, scans each with the engine, and recurses.

The runner has scanned the input's raw bytes already (nothing found today is lost);
the engine still holds its first bytes, so recognising an archive costs one
:func:`~scanner.archive.sniff.sniff`, and a small archive is opened from those bytes
without reading the input again. A large one is reopened from its source.
"""

from __future__ import annotations

import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable

from scanner.archive import sniff
from scanner.archive.limits import Budget, Limits
from scanner.archive.members import Body, members
from scanner.archive.streams import ArchiveError
from scanner.engine import Engine, Match, ReadInto
from scanner.engine.engine import HEAD
from scanner.stats import ScanStats

Warn = Callable[[str], None]
Inner = tuple[bytes, ...]
"""Names inside an archive, outermost first (``(b"lib/app.jar", b"config/.env")``)."""

BROKEN = (
    ArchiveError,
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)
"""What reading a hostile or damaged archive may raise: a warning, never a stop."""


class Expander:
    """Scans the members of archives, to ``limits.depth`` levels, with one engine."""

    def __init__(self, engine: Engine, limits: Limits) -> None:
        self._engine = engine
        self.limits = limits

    def expand(
        self,
        kind: str,
        size: int,
        reopen: Callable[[], ReadInto] | None,
        raw: list[Match],
        label: str,
        stats: ScanStats,
        warn: Warn,
    ) -> list[tuple[Inner, list[Match]]]:
        """The matches of the archive just scanned (``size`` bytes, of ``kind``): ``raw``, those
        in its own bytes, and those in its members, each credential at its deepest place.

        ``label`` names the input in warnings (a path, a blob).
        """
        whole = self._engine.whole(size)
        body = Body(size, whole) if whole is not None else Body(size, None, reopen)
        found: list[tuple[Inner, list[Match]]] = []
        self._open(kind, body, (), 1, Budget(self.limits), label, stats, warn, found)
        return deepest([((), raw), *found])

    def _open(
        self,
        kind: str,
        body: Body,
        inner: Inner,
        depth: int,
        budget: Budget,
        label: str,
        stats: ScanStats,
        warn: Warn,
        found: list[tuple[Inner, list[Match]]],
    ) -> None:
        def say(name: bytes | None, text: str) -> None:
            path = inner if name is None else (*inner, name)
            warn(f"{display(label, path)}: {text}")

        engine, limits = self._engine, self.limits
        try:
            for name, readinto, reopen in members(kind, body, budget, say):
                path = (*inner, name)
                tee = Tee(readinto, limits.in_memory) if reopen is None and depth < limits.depth else None
                try:
                    matches, size = engine.scan(tee or readinto, reopen=reopen)
                except BROKEN as exc:
                    if reopen is None:  # a stream's member: the stream is broken, nothing follows
                        say(name, f"cannot be read ({_reason(exc)}): the rest of the archive is not scanned")
                        return
                    say(name, f"cannot be read ({_reason(exc)}): the rest of it is not scanned")
                    continue
                stopped = getattr(readinto, "stopped", None)
                if stopped:
                    say(name, stopped)
                stats.members += 1
                stats.member_bytes += size
                if matches:
                    found.append((path, matches))
                nested = sniff.sniff(engine.head(size), size) if size >= 4 else None
                if nested is None:
                    continue
                if depth >= limits.depth:
                    say(
                        name,
                        f"an archive nested deeper than {limits.depth} levels (archive-depth): not opened",
                    )
                    continue
                whole = engine.whole(size)
                if whole is not None:
                    inside = Body(size, whole)
                elif tee is not None and tee.data is not None:
                    inside = Body(size, bytes(tee.data))
                elif reopen is not None:
                    inside = Body(size, None, reopen)
                else:
                    say(
                        name,
                        f"an archive in a stream over {limits.in_memory >> 20} MiB (archive-in-memory)",
                    )
                    continue
                self._open(nested, inside, path, depth + 1, budget, label, stats, warn, found)
        except BROKEN as exc:
            say(None, _reason(exc))


def deepest(hits: list[tuple[Inner, list[Match]]]) -> list[tuple[Inner, list[Match]]]:
    """Each credential once per archive: where it is found in a member, not again in the bytes
    around that member (a stored member's bytes are its archive's bytes too), at any level."""
    found: dict[bytes, list[Inner]] = {}
    for inner, matches in hits:
        for match in matches:
            found.setdefault(match.secret, []).append(inner)
    out = []
    for inner, matches in hits:
        kept = [
            m
            for m in matches
            if not any(len(other) > len(inner) and other[: len(inner)] == inner for other in found[m.secret])
        ]
        if kept:
            out.append((inner, kept))
    return out


def _reason(exc: BaseException) -> str:
    return (
        str(exc) if isinstance(exc, ArchiveError) else f"truncated or corrupt ({type(exc).__name__}: {exc})"
    )


def display(label: str, inner: Inner) -> str:
    """``outer!inner!path`` for warnings (findings are shown through :class:`~scanner.findings.Location`)."""
    from scanner.findings import inner_display

    return "!".join([label, *inner_display(label.encode("utf-8", "surrogateescape"), inner)])


class Tee:
    """A reader that keeps what it reads when the first bytes are an archive's (bounded).

    A member of a tar stream cannot be read twice, so an archive inside one is kept as it
    is scanned, up to ``limit`` bytes; anything else is passed through untouched.
    """

    __slots__ = ("_deciding", "_limit", "_read", "data")

    def __init__(self, read: ReadInto, limit: int) -> None:
        self._read = read
        self._limit = limit
        self._deciding = True
        self.data: bytearray | None = bytearray()

    def __call__(self, view: memoryview) -> int:
        n = self._read(view)
        data = self.data
        if data is None:
            return n
        if len(data) + n > self._limit:
            self.data = None
            return n
        data += view[:n]
        if self._deciding and (len(data) >= HEAD or not n):
            self._deciding = False
            if sniff.sniff(data, len(data)) is None:
                self.data = None
        return n
