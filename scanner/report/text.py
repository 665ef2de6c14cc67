"""The human format: one ``path:line:col: type secret`` line per finding, then a summary.

Paths and author names come from the scanned data, so control characters in
them are escaped: a file name must not be able to move the cursor or recolour
the terminal.
"""

from __future__ import annotations

import re
from typing import TextIO

from scanner.findings import Finding, Liveness
from scanner.report.base import LIVENESS_NOTES, ReportOptions, shown_secret
from scanner.stats import ScanStats

_RESET = "\033[0m"
_BOLD = "\033[1m"
_RED = "\033[1;31m"
_GREEN = "\033[32m"
_YELLOW = "\033[33m"
_DIM = "\033[2m"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with C0/C1 control characters (newline, ESC...) written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def finding_line(finding: Finding, options: ReportOptions) -> str:
    """The line for one finding, without a newline."""
    color = options.color
    match, loc = finding.match, finding.location
    where = _paint(f"{printable(loc.display)}:{match.line}:{match.column}:", _BOLD, color)
    what = _paint(finding.type, _RED, color)
    secret = _paint(shown_secret(finding, options), _YELLOW, color)
    line = f"{where} {what} {secret}"
    if match.encoding is not None:
        line += f" ({match.encoding})"
    if finding.live is not None:
        note = f"({LIVENESS_NOTES[finding.live]})"
        line += " " + _paint(note, _RED if finding.live is Liveness.LIVE else _DIM, color)
    if loc.commit is not None:
        parts = ["commit", loc.commit[:12], printable(loc.author_name or "?"), printable(loc.date or "?")]
        line += " " + _paint(" ".join(parts), _DIM, color)
    return line


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def human_bytes(size: int) -> str:
    """Decimal (SI) units, one decimal place: ``490.2 MB``."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 999.95 or unit == "PB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def summary(findings: list[Finding], stats: ScanStats) -> str:
    """``2 credentials found in 1 file (34,201 files, 490.2 MB scanned in 0.41 s)``."""
    details = [f"{_plural(stats.files, 'file')}, {human_bytes(stats.bytes)} scanned in {stats.seconds:.2f} s"]
    if stats.findings_suppressed:
        details.append(f"{stats.findings_suppressed:,} suppressed")
    if stats.skipped:
        details.append(f"{stats.skipped:,} skipped")
    tail = f"({'; '.join(details)})"
    if not findings:
        return f"No credentials found {tail}"
    files = len({f.location.path for f in findings})
    found = f"{_plural(len(findings), 'credential')} found in {_plural(files, 'file')}"
    verified = [f.live for f in findings if f.live is not None]
    if verified:
        live = verified.count(Liveness.LIVE)
        found += f", {live:,} live" + (": rotate now" if live else "")
        dead, unknown = verified.count(Liveness.DEAD), verified.count(Liveness.UNKNOWN)
        found += f" ({dead:,} not live, {unknown:,} unknown)"
    return f"{found} {tail}"


def write(findings: list[Finding], stats: ScanStats, out: TextIO, options: ReportOptions) -> None:
    for finding in findings:
        out.write(finding_line(finding, options) + "\n")
    code = _RED if findings else _GREEN
    out.write(_paint(summary(findings, stats), code, options.color) + "\n")
