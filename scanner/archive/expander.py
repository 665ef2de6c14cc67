"""Opens an input that is an archive into its members, scans each with the engine, and recurses.

The runner has scanned the input's raw bytes already (nothing found today is lost);
the engine still holds its first bytes, so recognising an archive costs one
:func:`~scanner.archive.sniff.sniff`, and a small archive is opened from those bytes
without reading the input again. A large one is reopened from its source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scanner.archive import sniff
from scanner.archive.limits import Budget, Limits
from scanner.archive.members import Body, Member, members
from scanner.archive.streams import ArchiveError
from scanner.carriers import carrier_of
from scanner.engine import Engine, Match, ReadInto
from scanner.engine.engine import HEAD
from scanner.stats import ScanStats

Warn = Callable[[str], None]
Inner = tuple[bytes, ...]
"""Names inside an archive, outermost first (``(b"lib/app.jar", b"config/.env")``)."""


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
        opening = _Opening(self._engine, self.limits, Budget(self.limits), label, stats, warn)
        opening.archive(kind, body, (), 1)
        return deepest([((), raw), *opening.found])


@dataclass(slots=True)
class _Opening:
    """One top-level archive being opened, nested archives included: what they share."""

    engine: Engine
    limits: Limits
    budget: Budget
    label: str
    """Names the input in warnings."""
    stats: ScanStats
    warn: Warn
    found: list[tuple[Inner, list[Match]]] = field(default_factory=list)

    def say(self, path: Inner, text: str) -> None:
        self.warn(f"{display(self.label, path)}: {text}")

    def archive(self, kind: str, body: Body, inner: Inner, depth: int) -> None:
        """Scan the members of the archive at ``inner`` (``depth`` levels down), and open theirs.

        Only :class:`ArchiveError` is caught: the member readers turn what each format's library
        raises for damaged input into it, so a bug elsewhere is not taken for a corrupt archive.
        """

        def say(name: bytes | None, text: str) -> None:
            self.say(inner if name is None else (*inner, name), text)

        try:
            for member in members(kind, body, self.budget, say):
                if not self._member(member, inner, depth):
                    return
        except ArchiveError as exc:
            say(None, str(exc))

    def _member(self, member: Member, inner: Inner, depth: int) -> bool:
        """Scan one member, then open it if it is an archive; False when nothing after it can be read."""
        name, readinto, reopen = member
        path = (*inner, name)
        keep = reopen is None and depth < self.limits.depth
        tee = Tee(readinto, self.limits.in_memory) if keep else None
        try:
            matches, size = self.engine.scan(tee or readinto, reopen=reopen)
        except ArchiveError as exc:
            if reopen is None:  # a stream's member: the stream is broken, nothing follows
                self.say(path, f"cannot be read ({exc}): the rest of the archive is not scanned")
                return False
            self.say(path, f"cannot be read ({exc}): the rest of it is not scanned")
            return True
        stopped = getattr(readinto, "stopped", None)
        if stopped:
            self.say(path, stopped)
        self.stats.members += 1
        self.stats.member_bytes += size
        if matches:
            self.found.append((path, matches))
        nested = sniff.sniff(self.engine.head(size), size) if size >= 4 else None
        if nested is not None and carrier_of(nested) not in self.limits.opened:
            nested = None
        if nested is not None:
            inside = self._nested(path, size, depth, tee, reopen)
            if inside is not None:
                self.archive(nested, inside, path, depth + 1)
        return True

    def _nested(
        self, path: Inner, size: int, depth: int, tee: Tee | None, reopen: Callable[[], ReadInto] | None
    ) -> Body | None:
        """The bytes of the archive member just scanned, to open it; None (and a warning) if out of reach."""
        limits = self.limits
        if depth >= limits.depth:
            self.say(path, f"an archive nested deeper than {limits.depth} levels (archive-depth): not opened")
            return None
        whole = self.engine.whole(size)
        if whole is not None:
            return Body(size, whole)
        if tee is not None and tee.data is not None:
            return Body(size, bytes(tee.data))
        if reopen is not None:
            return Body(size, None, reopen)
        self.say(path, f"an archive in a stream over {limits.in_memory >> 20} MiB (archive-in-memory)")
        return None


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
