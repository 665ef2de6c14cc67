"""``soundpiece-scan`` run as users run it: the installed script (or ``python -m scanner``), stdin
closed unless given, no progress line unless asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.processes import HANG_GUARD, unprivileged

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".venv" / "bin" / "soundpiece-scan"
SCAN = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "scanner"]


def scan(
    *args: str | bytes | os.PathLike,
    cwd: Path,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = HANG_GUARD,
    progress: bool = False,
    privileged: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run the scanner in ``cwd``; ``env`` is added to this process's environment (NO_COLOR set)."""
    argv = [*SCAN, *([] if progress else ["--no-progress"]), *map(os.fsencode, args)]
    return subprocess.run(
        argv if privileged else unprivileged(argv),
        cwd=cwd,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


def scan_json(
    *args: str | bytes | os.PathLike, cwd: Path, **kw: Any
) -> tuple[subprocess.CompletedProcess[bytes], dict]:
    """The scan and its JSON report; a traceback fails the test with its text."""
    result = scan("--format", "json", *args, cwd=cwd, **kw)
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    return result, json.loads(result.stdout)
