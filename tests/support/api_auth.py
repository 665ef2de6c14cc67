"""Helpers for the API authentication tests: statements a request ran, an Authorization header, whoami."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine, event

DENIED = {"detail": "Missing or invalid Authorization header"}


@contextmanager
def count_statements(engine: Engine) -> Iterator[list[str]]:
    """Statements run meanwhile, but for the background reads of the key change log (and BEGIN/COMMIT)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        background = "key_changes" in statement or "pg_current_snapshot" in statement
        if not background and statement.split()[0].upper() not in ("BEGIN", "COMMIT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def whoami(
    http: httpx.Client, api_key: str, *forwarded: str, base_url: str = "", **headers: str
) -> httpx.Response:
    """``GET /v1/whoami`` with ``api_key`` as the bearer token, through ``http``: an in-process
    TestClient, or ``tests.support.services.HTTP`` with a real server's ``base_url``. Each of
    ``forwarded`` is an ``X-Forwarded-For`` line of its own, in order; ``headers`` are sent as well."""
    lines = [
        ("Authorization", f"Bearer {api_key}"),
        *(("X-Forwarded-For", line) for line in forwarded),
        *headers.items(),
    ]
    return http.get(f"{base_url}/v1/whoami", headers=lines)
