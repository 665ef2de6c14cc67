"""A revoked key is refused by every worker of every ``serve`` process on the same database within one
second of the revocation's commit, on SQLite and on PostgreSQL; by the revoking worker at once.

Two ``serve --workers 2`` processes share a database. Every one of the four workers is reached
through a kept-alive connection of its own (``worker_helpers``: the worker holding a connection is
read from /proc) and has the key in its cache (200). Then the key is revoked, once by a signed
GitHub alert through the first process and once by the CLI, and every worker is asked again and
again. The guarantee is checked on what a client sees: every request sent one second or more after
the revocation returned is refused by every worker, and the alert's own worker refuses every request
sent after it returned. The time each worker took is printed (``-s``): the figures in RELIABILITY.md.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine

from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.secretbox import SecretBox
from tests.support.github import ALERT_PATH, KeyServer, Signer, alert_body
from tests.support.partner import add_account, add_key
from tests.support.services import ROOT, ServerProcess, service_env
from tests.support.workers import Pinned, pin_every_worker, worker_of

pytestmark = pytest.mark.slow
WORKERS = 2
DELAY = 1.0
"""The promise (SOUNDPIECE_KEY_CHANGE_DELAY's default)."""
WATCH = DELAY + 1.0
"""How long after a revocation every worker is watched."""


@dataclass(frozen=True)
class Answer:
    worker: int
    sent: float
    status: int


def watch(pinned: list[Pinned], api_key: str, until: Callable[[], bool]) -> list[Answer]:
    """Ask every worker about ``api_key``, each through its own connection, until ``until()``."""
    answers: list[Answer] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {api_key}"}

    def ask(connection: Pinned) -> None:
        while not until():
            sent = time.monotonic()
            status = connection.get("/v1/whoami", headers)
            with lock:
                answers.append(Answer(connection.worker, sent, status))
            time.sleep(0.005)

    threads = [threading.Thread(target=ask, args=(p,)) for p in pinned]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def judge(
    answers: list[Answer], workers: set[int], revoked_at: float, at_once: int | None
) -> dict[int, float]:
    """Assert the guarantee; return, per worker, the time from the revocation to its first 401."""
    late = [a for a in answers if a.sent >= revoked_at + DELAY and a.status != 401]
    assert late == [], f"answered {late[0].status} {late[0].sent - revoked_at:.3f} s after the revocation"
    if at_once is not None:
        early = [a for a in answers if a.worker == at_once and a.sent >= revoked_at and a.status != 401]
        assert early == [], "the worker that revoked the key still accepted it"
    assert {a.status for a in answers} <= {200, 401}
    propagation = {}
    for worker in workers:
        mine = [a for a in answers if a.worker == worker and a.sent >= revoked_at + DELAY]
        assert mine, f"worker {worker} was not asked after the delay"
        refusals = [a.sent for a in answers if a.worker == worker and a.status == 401]
        propagation[worker] = max(0.0, min(refusals) - revoked_at)
    return propagation


@dataclass
class Revocation:
    """Filled in by the thread that revokes: when it returned, and which worker did it (if a worker did)."""

    at: float | None = None
    worker: int | None = None


def revoke_by_alert(server: ServerProcess, signer: Signer, api_key: str, done: Revocation) -> None:
    body = alert_body(api_key)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", ALERT_PATH, body=body, headers=signer.headers(body))
    response = connection.getresponse()
    assert response.status == 200 and b"true_positive" in response.read()
    done.at = time.monotonic()
    assert server.process is not None
    done.worker = worker_of(connection, server.process.pid, server.port)
    connection.close()


def revoke_by_cli(env: dict[str, str], key_id: int, done: Revocation) -> None:
    command = [sys.executable, "-m", "partner_endpoint.cli", "keys", "revoke", str(key_id)]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    done.at = time.monotonic()


def test_a_revoked_key_is_refused_by_every_worker_within_a_second(
    database_url: str, engine: Engine, tmp_path: Path, signer: Signer, key_server: KeyServer
) -> None:
    secret_key = Fernet.generate_key().decode()
    with write_transaction(engine) as conn:
        account = add_account(conn, "owner@example.com", [], SYSTEM_CLOCK.now())
        by_alert, by_cli = (
            add_key(conn, SecretBox([secret_key]), account, label, SYSTEM_CLOCK.now()) for label in ("a", "b")
        )
    env = service_env(
        database_url=database_url,
        github_keys_url=key_server.url,
        secret_key=secret_key,
        mail_dir=str(tmp_path / "outbox"),
        mail_worker="off",
        log_level="WARNING",
        auth_failure_limit="0",  # every refusal is a 401 here, however often a worker is asked
    )
    servers = [ServerProcess(env, tmp_path, f"serve{i}", workers=WORKERS) for i in range(2)]
    try:
        for server in servers:
            server.start()
        pinned = [
            p for s in servers if s.process for p in pin_every_worker(s.process.pid, s.port, WORKERS, {})
        ]
        workers = {p.worker for p in pinned}
        assert len(workers) == 2 * WORKERS
        for connection in pinned:  # every worker has both keys in its cache
            for new in (by_alert, by_cli):
                assert connection.get("/v1/whoami", {"Authorization": f"Bearer {new.api_key}"}) == 200

        figures = {}
        for name, key, revoke in [
            ("alert", by_alert, lambda done: revoke_by_alert(servers[0], signer, by_alert.api_key, done)),
            ("cli", by_cli, lambda done: revoke_by_cli(env, by_cli.key_id, done)),
        ]:
            done = Revocation()
            thread = threading.Thread(target=revoke, args=(done,))
            thread.start()
            answers = watch(
                pinned, key.api_key, lambda d=done: d.at is not None and time.monotonic() > d.at + WATCH
            )
            thread.join(timeout=60)
            assert done.at is not None
            propagation = judge(answers, workers, done.at, done.worker)
            figures[name] = sorted(round(seconds, 3) for seconds in propagation.values())
        backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
        print(f"\n{backend}: seconds from the revocation returning to each worker's first 401: {figures}")
    finally:
        for server in servers:
            server.stop()
