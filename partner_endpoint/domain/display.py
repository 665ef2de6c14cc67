"""Text from outside (an alert's url, source and type; an account's label) made safe to show. Pure.

Whoever sends an alert chooses its url. Shown raw, a CR/LF adds lines of the sender's choosing
to a plain-text mail ("IMPORTANT: your key was NOT revoked"), and ESC or CR rewrites what a
terminal shows. Wherever such text is shown (mail, ``leaks list``, the dashboard), it goes
through :func:`one_line`: one line, printable characters only, bounded length.
"""

from __future__ import annotations

FIELD_LIMIT = 100
"""Characters shown of a short field (type, source, label); the database keeps 100 of a source too."""
URL_LIMIT = 500
"""Characters shown of a url: a GitHub blob url with a commit id is about 120."""
ELLIPSIS = "…"


def one_line(text: str, limit: int = FIELD_LIMIT) -> str:
    """``text`` on one line of printable characters, at most ``limit`` characters long.

    Every character that is not printable (line and paragraph breaks, tabs, C0/C1 controls
    such as ESC, format characters such as bidi overrides, lone surrogates, unassigned code
    points) becomes a space, runs of spaces become one, and the ends are stripped. A longer
    result is cut and ends in an ellipsis, so a cut is visible. Only the first ``4 * limit``
    characters are looked at (a url may be megabytes); past them, the result is cut.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    head = text[: 4 * limit]
    shown = " ".join("".join(ch if ch.isprintable() else " " for ch in head).split())
    if len(shown) <= limit and len(head) == len(text):
        return shown
    return shown[: limit - 1].rstrip() + ELLIPSIS
