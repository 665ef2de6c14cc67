"""Filters that drop findings someone has already looked at: inline markers and the baseline.

The baseline module (JSON) and the path excluder (regular expressions) are
imported where they are used, so importing this package stays free.
"""

from __future__ import annotations

from collections.abc import Iterable

from scanner.filters.inline import INLINE_MARKER, is_allowed_inline
from scanner.findings import Finding

__all__ = ["INLINE_MARKER", "drop_suppressed", "is_allowed_inline"]


def drop_suppressed(
    findings: Iterable[Finding], baseline: frozenset[str] = frozenset()
) -> tuple[list[Finding], int]:
    """The findings to report, in their order, and how many were suppressed."""
    kept: list[Finding] = []
    suppressed = 0
    # Tokens on one line share its line_text (up to a chunk long): search each text once.
    # The texts stay referenced here, so an id is never reused for another one.
    allowed: dict[int, tuple[bytes, bool]] = {}
    for finding in findings:
        text = finding.match.line_text
        if id(text) not in allowed:
            allowed[id(text)] = (text, is_allowed_inline(finding))
        if finding.secret_sha256 in baseline or allowed[id(text)][1]:
            suppressed += 1
        else:
            kept.append(finding)
    return kept, suppressed
