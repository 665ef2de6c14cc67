"""The Dockerfile passes hadolint (no Docker engine needed) and keeps its promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2
    assert "USER 10001" in text
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "pip install '.[endpoint]'" in text
    assert '"soundpiece-partner", "serve"' in text


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "tests", "*.db", "*.db.key", "outbox"} <= ignored
