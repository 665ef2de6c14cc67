"""Compiles the patterns (the rules' own, and their base64 images) into one multi-pattern matcher.

Two backends share one interface: Vectorscan/Hyperscan (SIMD, several GB/s a
core, releases the GIL) where its wheel exists, and the ``regex`` module
elsewhere. Both report candidates only: the checksum decides what is a token.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any, Protocol

Candidate = tuple[int, int]
"""(index of the pattern, byte offset just past the candidate)."""


class Matcher(Protocol):
    name: str

    def candidates(self, data: memoryview) -> list[Candidate]:
        """Every place in ``data`` where a pattern ends, in any order."""
        ...


class HyperscanMatcher:
    name = "hyperscan"

    def __init__(self, patterns: Sequence[str]) -> None:
        import hyperscan

        self._db = _hyperscan_database(hyperscan, [pattern.encode("ascii") for pattern in patterns])
        # One scratch per matcher; a matcher is used by one thread at a time.
        self._scratch = hyperscan.Scratch(self._db)
        self._found: list[Candidate] = []
        found = self._found

        def on_match(pattern_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            found.append((pattern_id, end))

        self._on_match = on_match
        self._scan = self._db.scan

    def candidates(self, data: memoryview) -> list[Candidate]:
        # Positional arguments (data, handler, flags, context, scratch): once per file, so it counts.
        self._scan(data, self._on_match, 0, None, self._scratch)
        if not self._found:
            return []
        found = self._found[:]
        self._found.clear()
        return found


def literal(text: bytes) -> str:
    """A pattern matching exactly ``text``, any bytes (NULs, backslashes) escaped."""
    return "".join(f"\\x{byte:02x}" for byte in text)


def cache_dir() -> str:
    """Where compiled pattern databases are kept between runs (``$XDG_CACHE_HOME/soundpiece-scan``).

    Plain ``os.path``: pathlib and platform would add 7 ms to every start (a pre-commit hook).
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "soundpiece-scan")


def _hyperscan_database(hyperscan: Any, expressions: list[bytes]) -> Any:
    """The compiled database, from the cache when an earlier run compiled the same patterns here.

    Compiling the plain patterns and their base64 images takes 30-50 ms, most of
    a small scan (a pre-commit hook) and again in every pool worker; loading the
    serialized database takes well under a millisecond. Hyperscan checks what it
    loads (a damaged file is refused), and the file name covers the patterns, the
    library and the machine, so a stale or foreign file is never used: it is compiled again.
    """
    version = getattr(hyperscan, "__version__", "")
    identity = b"\0".join([version.encode(), os.uname().machine.encode(), *expressions])
    directory = cache_dir()
    path = os.path.join(directory, f"hyperscan-{hashlib.sha256(identity).hexdigest()[:32]}.db")
    try:
        with open(path, "rb") as cached:
            return hyperscan.loadb(cached.read(), hyperscan.HS_MODE_BLOCK)
    except (OSError, hyperscan.error):
        pass
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=expressions, ids=list(range(len(expressions))), flags=[0] * len(expressions))
    try:
        os.makedirs(directory, exist_ok=True)
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "wb") as out:
            out.write(hyperscan.dumpb(database))
        os.replace(partial, path)  # whole or absent, even with several processes writing
    except OSError:
        pass  # a read-only home: compile every time
    return database


class RegexMatcher:
    name = "regex"

    def __init__(self, patterns: Sequence[str]) -> None:
        import regex

        # Lookahead keeps overlapping candidates (a prefix inside another token).
        alternatives = "|".join(f"(?=({pattern}))" for pattern in patterns)
        self._pattern = regex.compile(alternatives.encode("ascii"))

    def candidates(self, data: memoryview) -> list[Candidate]:
        found: list[Candidate] = []
        for m in self._pattern.finditer(data, concurrent=True):
            for index, group in enumerate(m.groups()):
                if group is not None:
                    found.append((index, m.start() + len(group)))
        return found


def compile_matcher(patterns: Sequence[str], backend: str | None = None) -> Matcher:
    """The fastest available matcher, or the one named by ``backend``."""
    if backend in (None, "hyperscan"):
        try:
            return HyperscanMatcher(patterns)
        except ImportError:
            if backend == "hyperscan":
                raise
    return RegexMatcher(patterns)
