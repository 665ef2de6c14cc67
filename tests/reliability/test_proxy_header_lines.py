"""Behind a proxy that adds its own ``X-Forwarded-For`` line, through a real uvicorn server.

HAProxy's ``option forwardfor`` appends a header line of its own instead of extending the client's.
The server must read both lines as one list and believe only its right end: before the fix it read
the first line, the one the client wrote, and a forged allowlisted address got in.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.store.db import make_engine, write_transaction
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.secretbox import SecretBox
from tests.support.api_auth import whoami
from tests.support.partner import add_account, add_key
from tests.support.services import HTTP, ServerProcess, service_env

ALLOWED = "198.51.100.7"
OUTSIDE = "203.0.113.9"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """``serve`` behind a (loopback) proxy that sends X-Forwarded-For; one key fenced to ALLOWED."""
    tmp = tmp_path_factory.mktemp("proxy")
    database_url = f"sqlite:///{tmp / 'store.db'}"
    secret_key = Fernet.generate_key().decode()
    engine = make_engine(database_url)
    migrate(engine)
    with write_transaction(engine) as conn:
        account = add_account(conn, "owner@example.com", [ALLOWED], SYSTEM_CLOCK.now())
        api_key = add_key(conn, SecretBox([secret_key]), account, "fenced", SYSTEM_CLOCK.now()).api_key
    engine.dispose()
    env = service_env(
        database_url=database_url,
        secret_key=secret_key,
        mail_dir=str(tmp / "outbox"),
        mail_worker="off",
        trusted_proxy_header="X-Forwarded-For",
        log_level="WARNING",
    )
    server = ServerProcess(env, tmp, "serve")
    server.start()
    try:
        yield server, api_key
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([ALLOWED, OUTSIDE], 401),  # the client forged the first line; the proxy added the second
        ([f"10.0.0.1, {ALLOWED}", OUTSIDE], 401),
        ([OUTSIDE, ALLOWED], 200),  # the proxy saw ALLOWED
        ([f"{OUTSIDE}, {ALLOWED}"], 200),  # one line, as a proxy that appends writes it
        ([ALLOWED, "127.0.0.1"], 200),  # a second trusted proxy (loopback) in front of ours
        ([ALLOWED, OUTSIDE, "127.0.0.1"], 401),
        # Lines too long for the server's cache of clients are read afresh, with the same rule.
        (["10.0.0.1, " * 40 + OUTSIDE, ALLOWED], 200),
        ([ALLOWED + ", 10.0.0.1" * 40, OUTSIDE], 401),
        ([OUTSIDE, ALLOWED], 200),  # the same lines again: an answer the cache keeps
    ],
)
def test_every_header_line_counts(served: tuple[ServerProcess, str], lines: list[str], expected: int) -> None:
    server, api_key = served
    assert whoami(HTTP, api_key, *lines, base_url=server.url).status_code == expected  # a line each
