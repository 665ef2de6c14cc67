"""Inline allow markers: a reviewed false positive is waved through where it sits.

The marker is a plain comment on the same line as the token, in any language
(``# soundpiece-scan: allow``, ``// soundpiece-scan: allow``...), so the
exception is visible in code review next to the thing it excuses.
"""

from __future__ import annotations

from scanner.findings import Finding

INLINE_MARKER = b"soundpiece-scan: allow"


def is_allowed_inline(finding: Finding) -> bool:
    """True when the finding's line carries :data:`INLINE_MARKER`."""
    return INLINE_MARKER in finding.match.line_text
