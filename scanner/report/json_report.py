"""The ``json`` format: one document, ``{"findings": [...], "stats": {...}}``.

Each finding is :meth:`Finding.to_dict`, the shape shared with ``jsonl``. ASCII
escapes keep the output writable to any stream, whatever its encoding.
"""

from __future__ import annotations

import json
from typing import TextIO

from scanner.findings import Finding
from scanner.report.base import ReportOptions
from scanner.stats import ScanStats


def write(findings: list[Finding], stats: ScanStats, out: TextIO, options: ReportOptions) -> None:
    document = {
        "findings": [finding.to_dict(show_secrets=options.show_secrets) for finding in findings],
        "stats": stats.to_dict(),
    }
    json.dump(document, out, indent=2)
    out.write("\n")
