"""The ``github`` format: GitHub Actions ``::error`` workflow commands.

Each finding becomes an annotation on the file and line in the pull request.
Escaping follows ``@actions/core``: ``%``, ``\\r`` and ``\\n`` in the message, and
also ``:`` and ``,`` in properties, where they would end the value early. The
summary line closes the log as plain text.
"""

from __future__ import annotations

from typing import TextIO

from scanner.findings import Finding, display_path
from scanner.report.base import ReportOptions, label, repository_path, where_inside
from scanner.report.text import summary
from scanner.stats import ScanStats

TITLE = "Soundpiece credential"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding, options: ReportOptions) -> str:
    """The ``::error ...::message`` command for one finding, without a newline."""
    match = finding.match
    properties = {"file": display_path(repository_path(finding.location, options.scan_root))}
    if not finding.location.inner:  # inside an archive, a line of the member is no line of the file
        properties.update(
            line=str(match.line), col=str(match.column), endColumn=str(match.column + match.span)
        )
    properties["title"] = TITLE
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    message = label(finding, options) + where_inside(finding)
    if finding.location.commit is not None:
        message += f" (commit {finding.location.commit[:12]})"
    return f"::error {props}::{escape_data(message)}"


def write(findings: list[Finding], stats: ScanStats, out: TextIO, options: ReportOptions) -> None:
    for finding in findings:
        out.write(annotation(finding, options) + "\n")
    out.write(summary(findings, stats) + "\n")
