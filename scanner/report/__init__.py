"""Reporters: turn sorted findings into text, JSON, JSON Lines, SARIF or GitHub annotations.

Each format lives in its own module and only the chosen one is imported, so the
CLI pays for ``json`` or ``urllib`` only when it writes that format.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, TextIO

from scanner.report.base import ReportOptions

if TYPE_CHECKING:
    from scanner.findings import Finding
    from scanner.stats import ScanStats

__all__ = ["FORMATS", "ReportOptions", "write_report"]

_MODULES = {
    "text": "scanner.report.text",
    "json": "scanner.report.json_report",
    "jsonl": "scanner.report.jsonl",
    "sarif": "scanner.report.sarif",
    "github": "scanner.report.github",
}
"""The one list of report formats: name -> the module whose ``write`` renders it."""

FORMATS = tuple(_MODULES)


def write_report(
    fmt: str,
    findings: list[Finding],
    stats: ScanStats,
    out: TextIO,
    *,
    show_secrets: bool = False,
    color: bool = False,
    scan_root: str | None = None,
) -> None:
    """Write ``findings`` (already sorted) and ``stats`` to ``out`` in format ``fmt``."""
    if fmt not in _MODULES:
        raise ValueError(f"unknown report format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    options = ReportOptions(show_secrets=show_secrets, color=color, scan_root=scan_root)
    importlib.import_module(_MODULES[fmt]).write(findings, stats, out, options)
