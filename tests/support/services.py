"""Real processes for fault tests: the service under uvicorn, an SMTP sink, a PostgreSQL schema of its own
(a private PostgreSQL cluster is tests/support/postgres_cluster.py). Plain classes; the tests make
the fixtures."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.store.db import make_engine, read_transaction, write_transaction
from partner_endpoint.store.models import api_keys, leak_events, mail_outbox
from partner_endpoint.store.secretbox import SecretBox
from tests.support.github import Signer, post_alert
from tests.support.partner import add_account, add_key
from tests.support.processes import HANG_GUARD, free_port, wait_for

HTTP = httpx.Client(timeout=60, limits=httpx.Limits(max_keepalive_connections=0))
"""One client for all requests: building one per request (its TLS context) costs ~100 ms.
No keep-alive: every request is a fresh connection, as after a kill -9 it must be anyway."""
ROOT = Path(__file__).resolve().parents[2]


# --- mail ---------------------------------------------------------------------------------------


class SmtpSink:
    """An aiosmtpd server that keeps what it is given and counts deliveries per Message-ID; can be
    stopped and restarted on its port. ``tls`` makes it require STARTTLS, ``login`` (user, password)
    makes it require AUTH with exactly those; ``refuse`` and ``refuse_recipients`` make it fail."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.deliveries: Counter[str] = Counter()
        self.recipients: Counter[str] = Counter()
        self.envelopes: list[tuple[str, list[str]]] = []
        """(MAIL FROM, RCPT TOs) of each message accepted, in order."""
        self.logins: list[str] = []
        """Users that authenticated, in order."""
        self.refuse = False
        """Answer 451 (try again later) to every message, as an overloaded server does."""
        self.refuse_recipients = False
        """Answer 550 to every recipient, quoting the address, as Postfix does for an unknown one."""
        self._tls = tls
        self._login = login
        self._messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_recipients:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            self._messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.deliveries[str(message["Message-ID"])] += 1
            for recipient in envelope.rcpt_tos:
                self.recipients[recipient] += 1
        return "250 OK"

    def _authenticate(
        self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        given = (data.login.decode(), data.password.decode()) if isinstance(data, LoginPassword) else None
        if given is not None and given == self._login:
            self.logins.append(given[0])
        return AuthResult(success=given is not None and given == self._login)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self._tls is not None:
            options.update(tls_context=self._tls, require_starttls=True)
        if self._login is not None:
            options.update(auth_required=True, authenticator=self._authenticate)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    def total(self) -> int:
        with self._lock:
            return sum(self.deliveries.values())

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the service --------------------------------------------------------------------------------


PARTNER = str(Path(sys.executable).parent / "soundpiece-partner")
"""The installed command, as operators run it."""


def partner_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``soundpiece-partner ARGS`` with ``env``, whatever its exit code."""
    return subprocess.run(
        [PARTNER, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD
    )


def partner_cli(env: dict[str, str], *args: str) -> Any:
    """``soundpiece-partner ARGS --json`` with ``env``: its JSON answer; a failure fails the test."""
    result = partner_command(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def service_env(**values: str) -> dict[str, str]:
    """The environment for a child process: ours without SOUNDPIECE_*, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")}
    env.update({f"SOUNDPIECE_{k.upper()}": v for k, v in values.items()})
    return env


class ServerProcess:
    """``soundpiece-partner serve`` (one uvicorn worker by default) on a free loopback port, in its own
    session."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str, *args: str, workers: int = 1) -> None:
        self.env = env
        self.args = args
        """More ``serve`` arguments."""
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        command = [sys.executable, "-m", "partner_endpoint.cli", "serve", "--host", "127.0.0.1"]
        command += ["--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *self.args],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._ready, timeout, interval=0.1, what=f"{self.url}/healthz")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}: {self.log()[-2000:]}")
        try:
            return HTTP.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no rollback by the process; what was in flight is simply gone."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, and SIGKILL if it has not exited 10 s later; its exit status (None: never started).
        After a graceful shutdown it is -SIGTERM too (uvicorn raises the signal again once it has shut
        down): :meth:`shut_down` tells the two apart."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def shut_down(self) -> bool:
        """:meth:`stop`, and whether the service shut down gracefully: its lifespan ended (which waits
        for the in-process mail worker to end the round it is in), then the process exited on SIGTERM."""
        return self.stop() == -signal.SIGTERM and "Application shutdown complete." in self.log()

    def __enter__(self) -> ServerProcess:
        self.start(HANG_GUARD)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MailWorkerProcess:
    """``soundpiece-partner mail-worker`` (polling) as a separate process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "partner_endpoint.cli", "mail-worker"],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> int:
        """SIGTERM (the worker ends the round it is in, then exits 0), SIGKILL after 15 s; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return int(self.process.returncode)


def deliver_until_accepted(
    base_urls: list[str], signer: Signer, body: bytes, statuses: list[int], timeout: float = 60.0
) -> httpx.Response:
    """Redeliver as GitHub does until one answer is 200, alternating servers; records every status."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        url = base_urls[attempt % len(base_urls)]
        attempt += 1
        try:
            response = post_alert(HTTP, signer, body, base_url=url)
            statuses.append(response.status_code)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            statuses.append(0)
        if time.monotonic() > deadline:
            raise AssertionError(f"no delivery accepted within {timeout} s: {statuses[-10:]}")
        time.sleep(0.2)


# --- databases ----------------------------------------------------------------------------------


def postgres_url() -> str:
    """The PostgreSQL server of every PostgreSQL test: ``SOUNDPIECE_TEST_POSTGRES_URL``, which
    scripts/test always sets (to a private cluster it starts, unless given one). Without it the test
    fails: it never skips, and never guesses at some other server."""
    url = os.environ.get("SOUNDPIECE_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "SOUNDPIECE_TEST_POSTGRES_URL is not set: scripts/test sets it to a private PostgreSQL"
            " cluster it starts (or says why it could not), or set it to a server's URL"
            " (postgresql+psycopg://USER@HOST:PORT/DATABASE)",
            pytrace=False,
        )
    return url


ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""Narrows a test of the ``database_url`` fixture (tests/conftest.py) to SQLite."""
ON_POSTGRES = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
"""Narrows a test of the ``database_url`` fixture (tests/conftest.py) to PostgreSQL."""


@contextlib.contextmanager
def scratch_schema(postgres_url: str, prefix: str = "pe") -> Iterator[str]:
    """A schema of its own on ``postgres_url`` (safe beside other test workers), dropped afterwards;
    the URL it yields puts it first on the search path."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = make_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def issue_keys(engine: Engine, box: SecretBox, count: int, tag: str = "") -> list[str]:
    """``count`` accounts with one key each (owner-<tag><i>@example.com); returns the API keys."""
    issued: list[str] = []
    now = SYSTEM_CLOCK.now()
    with write_transaction(engine) as conn:
        for i in range(count):
            account_id = add_account(conn, f"owner-{tag}{i}@example.com", [], now)
            issued.append(add_key(conn, box, account_id, f"key {tag}{i}", now).api_key)
    return issued


def table_counts(engine: Engine) -> dict[str, Any]:
    """What the end state is judged by."""
    with read_transaction(engine) as conn:

        def count(table: Any, *where: Any) -> int:
            return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

        return {
            "keys": count(api_keys),
            "revoked": count(api_keys, api_keys.c.status == "revoked"),
            "revoked_at_set": count(api_keys, api_keys.c.revoked_at.is_not(None)),
            "events": count(leak_events),
            "events_revoked": count(leak_events, leak_events.c.action == "revoked"),
            "max_events_per_key": conn.execute(
                select(func.coalesce(func.max(text("n")), 0)).select_from(
                    select(func.count().label("n"))
                    .select_from(leak_events)
                    .group_by(leak_events.c.key_id)
                    .subquery()
                )
            ).scalar_one(),
            "outbox": count(mail_outbox),
            "sent": count(mail_outbox, mail_outbox.c.status == "sent"),
            "pending": count(mail_outbox, mail_outbox.c.status == "pending"),
        }
