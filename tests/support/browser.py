"""Debian's Chromium under Playwright, an SMTP inbox that keeps whole messages, screenshots as artifacts.

Plain functions and classes; the fixtures are in tests/browser/conftest.py. The browser is never downloaded:
Playwright drives the ``chromium`` on PATH (scripts/test installs Debian's package if it is missing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
"""Screenshots of every page the journey visits (gitignored)."""

CHROMIUM_FLAGS = [
    "--disable-gpu",
    # Without these Chromium phones home at start-up, and on a closed network its own connections
    # are refused in ways that stall it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise AssertionError(
            "Debian's chromium is not on PATH; scripts/test installs it (apt-get install -y chromium)"
        )
    return path


def chromium_flags() -> list[str]:
    """Chromium's sandbox cannot start as root (this machine, CI): there, and only there, it is off."""
    return [*CHROMIUM_FLAGS, "--no-sandbox"] if os.geteuid() == 0 else list(CHROMIUM_FLAGS)


class Screenshots:
    """Numbered full-page screenshots, so the folder reads in the journey's order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self._count = 0

    def take(self, page: Any, name: str, *, full_page: bool = True) -> Path:
        path = self._next(name)
        page.screenshot(path=path, full_page=full_page)
        return path

    def element(self, locator: Any, name: str) -> Path:
        """Just one part of a page (a Playwright locator), with a margin of the page around it."""
        path = self._next(name)
        box = locator.bounding_box()  # in the viewport, which may be scrolled: the clip is in the page
        left, top = locator.page.evaluate("[window.scrollX, window.scrollY]")
        margin = 16
        clip = {
            "x": max(0, box["x"] + left - margin),
            "y": max(0, box["y"] + top - margin),
            "width": box["width"] + 2 * margin,
            "height": box["height"] + 2 * margin,
        }
        locator.page.screenshot(path=path, clip=clip, full_page=True)
        return path

    def _next(self, name: str) -> Path:
        self._count += 1
        return self.folder / f"{self._count:02d}-{name}.png"
