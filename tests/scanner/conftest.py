"""Findings built from real minted tokens, for the reporter and filter tests."""

from __future__ import annotations

import pytest

import rules
from scanner.engine.match import Match
from scanner.findings import Finding, Location


def make_finding(
    token: str | None = None,
    *,
    path: bytes = b"src/app.py",
    line: int = 3,
    column: int = 9,
    line_text: bytes | None = None,
    **location: str,
) -> Finding:
    """A finding for ``token`` (a fresh API key by default) at ``path:line:column``."""
    token = token or rules.API_KEY.mint()
    fmt = rules.recognise(token)
    assert fmt is not None, "tests must use checksum-valid tokens"
    secret = token.encode("ascii")
    match = Match(
        type=fmt.name,
        offset=100 * line + column,
        line=line,
        column=column,
        secret=secret,
        line_text=line_text if line_text is not None else b"API_KEY = " + secret,
    )
    return Finding(match, Location(path=path, **location))


@pytest.fixture(scope="session")
def finding():
    """``finding(token=None, *, path=..., line=..., column=..., line_text=..., **location)``."""
    return make_finding
