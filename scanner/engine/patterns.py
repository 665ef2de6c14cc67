"""Compiles the patterns (the rules' own, and their base64 images) into one multi-pattern matcher.

Two backends share one interface: Vectorscan/Hyperscan (SIMD, several GB/s a
core, releases the GIL) where its wheel exists, and the ``regex`` module
elsewhere. Both report candidates only: the checksum decides what is a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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

        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=[pattern.encode("ascii") for pattern in patterns],
            ids=list(range(len(patterns))),
            flags=[0] * len(patterns),
        )
        # One scratch per matcher; a matcher is used by one thread at a time.
        self._scratch = hyperscan.Scratch(self._db)
        self._found: list[Candidate] = []
        found = self._found

        def on_match(pattern_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            found.append((pattern_id, end))

        self._on_match = on_match

    def candidates(self, data: memoryview) -> list[Candidate]:
        self._db.scan(data, match_event_handler=self._on_match, scratch=self._scratch)
        if not self._found:
            return []
        found = self._found[:]
        self._found.clear()
        return found


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
