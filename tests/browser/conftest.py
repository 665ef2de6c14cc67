"""Fixtures for the browser tests: one Chromium for the whole session, an SMTP inbox, GitHub's side."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from browser_support import Inbox, chromium_flags, chromium_path
from fault_helpers import KeyServer, Signer, free_port


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Launched once: starting Chromium costs more than most of what a test does with it."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=chromium_flags())
        yield browser
        browser.close()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    server = Inbox(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def key_server(signer: Signer) -> Iterator[KeyServer]:
    server = KeyServer(signer.document)
    yield server
    server.close()
