"""What every reporter shares: options, the one-line label and repository-relative paths."""

from __future__ import annotations

import os
from dataclasses import dataclass

from scanner.findings import Finding, Liveness, Location


@dataclass(frozen=True, slots=True)
class ReportOptions:
    show_secrets: bool = False
    """Print full secrets instead of the redacted form (for local triage only)."""
    color: bool = False
    """ANSI colours; only the text reporter uses them."""
    scan_root: str | None = None
    """Directory the scan was rooted at; absolute finding paths under it are made relative."""


def shown_secret(finding: Finding, options: ReportOptions) -> str:
    """The secret as it may be displayed: redacted unless ``show_secrets``."""
    if options.show_secrets:
        return finding.match.secret.decode("ascii", "backslashreplace")
    return finding.match.redacted


LIVENESS_NOTES = {
    Liveness.LIVE: "LIVE: the API accepts it, revoke it now",
    Liveness.DEAD: "not live: the API refuses it",
    Liveness.UNKNOWN: "liveness unknown",
}
"""What ``--verify`` found, in words (signing secrets are never sent, so they stay unknown)."""


def label(finding: Finding, options: ReportOptions) -> str:
    """``<type> <secret as shown> [(encoding)] [(liveness)]``: the message every format uses."""
    text = f"{finding.type} {shown_secret(finding, options)}"
    if finding.match.encoding is not None:
        text += f" ({finding.match.encoding})"
    if finding.live is not None:
        text += f" ({LIVENESS_NOTES[finding.live]})"
    return text


def where_inside(finding: Finding) -> str:
    """`` in app.zip!config/.env line 3``, for the formats that point at the outer file only
    (SARIF, annotations: a path inside an archive is no file of the repository); else ``""``."""
    location = finding.location
    if not location.inner:
        return ""
    return f" in {location.display}, line {finding.match.line} column {finding.match.column}"


STDIN_NAME = b"<stdin>"
"""How the formats that point into the repository (SARIF, annotations) name standard input."""


def repository_path(location: Location, scan_root: str | None) -> bytes:
    """The path SARIF and annotations show: relative to the scan root; :data:`STDIN_NAME` for stdin."""
    return STDIN_NAME if location.stdin else relative_path(location.path, scan_root)


def relative_path(path: bytes, scan_root: str | None) -> bytes:
    """``path`` relative to ``scan_root`` when it lies under it, with POSIX separators.

    Code scanning and workflow annotations only attach to repository-relative
    paths; a path outside the root is kept as given.
    """
    if scan_root is not None and os.path.isabs(path):
        root = os.path.join(os.fsencode(os.path.abspath(scan_root)), b"")  # with a trailing separator
        absolute = os.path.abspath(path)
        if absolute.startswith(root):
            path = absolute[len(root) :]
    if os.sep != "/":
        path = path.replace(os.sep.encode(), b"/")
    while path.startswith(b"./"):
        path = path[2:]
    return path
