"""Fixtures for the browser tests: one Chromium for the whole session.

GitHub's side (``signer``, ``key_server``) and the SMTP server (``smtp``) come from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.support.browser import chromium_flags, chromium_path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One launch per module: starting Chromium costs more than most of what a test does with it.

    Not per session: Playwright's sync API keeps an asyncio loop running in this thread while it
    lives, and later tests on the same pytest worker that call ``asyncio.run`` would then fail.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=chromium_flags())
        yield browser
        browser.close()
