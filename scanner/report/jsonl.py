"""The ``jsonl`` format: one finding object per line, and nothing else.

Every line has the same shape (:meth:`Finding.to_dict`), so ``wc -l`` counts
findings, ``jq -c`` needs no filtering and empty output means a clean scan.
Stats are left out on purpose; use ``json`` to get them. :func:`write_finding`
lets the CLI stream findings as they are found instead of waiting for the end.
"""

from __future__ import annotations

import json
from typing import TextIO

from scanner.findings import Finding
from scanner.report.base import ReportOptions
from scanner.stats import ScanStats


def write_finding(finding: Finding, out: TextIO, *, show_secrets: bool = False) -> None:
    """Write one finding as one compact JSON line."""
    out.write(json.dumps(finding.to_dict(show_secrets=show_secrets), separators=(",", ":")) + "\n")


def write(findings: list[Finding], stats: ScanStats, out: TextIO, options: ReportOptions) -> None:
    for finding in findings:
        write_finding(finding, out, show_secrets=options.show_secrets)
