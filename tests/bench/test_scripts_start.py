"""Every benchmark script still starts: its imports resolve against the code they measure.

The benchmarks are run by hand, not by the suite, so a renamed helper would otherwise break one
silently (a dashboard helper once did). ``--help`` imports the whole script and exits before any
work; what the benchmarks measure is in bench/README.md, not here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import HANG_GUARD

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name != "common.py")


def test_the_benchmarks_are_all_here() -> None:
    assert {"api_auth.py", "endpoint_load.py", "scan_dir.py", "scan_git.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_benchmark_starts(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=HANG_GUARD
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {script}")
