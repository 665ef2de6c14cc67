"""Filters that drop findings someone has already looked at: inline markers and the baseline.

The baseline module (JSON) and the path excluder (regular expressions) are
imported where they are used, so importing this package stays free.
"""

from __future__ import annotations

from collections.abc import Iterable

from scanner.filters.inline import INLINE_MARKER, is_allowed_inline
from scanner.findings import Finding

__all__ = ["INLINE_MARKER", "drop_suppressed", "is_allowed_inline", "is_suppressed"]


def is_suppressed(finding: Finding, baseline: frozenset[str] = frozenset()) -> bool:
    """True when an inline marker or the baseline (a set of ``secret_sha256``) excuses ``finding``."""
    return finding.secret_sha256 in baseline or is_allowed_inline(finding)


def drop_suppressed(
    findings: Iterable[Finding], baseline: frozenset[str] = frozenset()
) -> tuple[list[Finding], int]:
    """The findings to report, in their order, and how many were suppressed."""
    kept: list[Finding] = []
    suppressed = 0
    for finding in findings:
        if is_suppressed(finding, baseline):
            suppressed += 1
        else:
            kept.append(finding)
    return kept, suppressed
