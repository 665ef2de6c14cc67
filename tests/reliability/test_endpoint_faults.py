"""Faults with real processes on PostgreSQL: nothing is lost, nothing is done twice.

Every scenario runs ``soundpiece-partner serve`` (uvicorn) as subprocesses on loopback ports, GitHub's
key server, an aiosmtpd server that counts deliveries per Message-ID, and a PostgreSQL schema of its own
(a private cluster, for the restart). The end state is judged in the tables (keys, leak events, outbox)
and at the SMTP server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.exc import OperationalError

from partner_endpoint.store.db import make_engine, read_transaction, write_transaction
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.models import mail_outbox
from partner_endpoint.store.secretbox import SecretBox
from tests.support.github import KeyServer, Signer, alert_body, post_alert
from tests.support.partner import Clock
from tests.support.postgres_cluster import PrivatePostgres
from tests.support.processes import wait_for
from tests.support.services import (
    HTTP,
    ON_POSTGRES,
    MailWorkerProcess,
    ServerProcess,
    SmtpSink,
    deliver_until_accepted,
    issue_keys,
    service_env,
    table_counts,
)

pytestmark = pytest.mark.postgres


# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class Rig:
    """What a scenario runs against: GitHub (``signer``, a key server), the SMTP sink, the service's
    secret key; the service's processes it starts, stopped (or killed) at the end."""

    signer: Signer
    smtp: SmtpSink
    key_server_url: str
    log_dir: Path
    secret_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    started: list[ServerProcess | MailWorkerProcess] = field(default_factory=list)

    def env(self, database_url: str, **extra: str) -> dict[str, str]:
        """The service's environment on ``database_url``: real key server and SMTP, fast mail polls."""
        values = {
            "database_url": database_url,
            "github_keys_url": self.key_server_url,
            "secret_key": self.secret_key,
            "smtp_url": self.smtp.url,
            "mail_poll_interval": "0.2",
            "log_level": "INFO",
            **extra,
        }
        return service_env(**values)

    def server(self, env: dict[str, str], name: str) -> ServerProcess:
        server = ServerProcess(env, self.log_dir, name)
        self.started.append(server)
        server.start()
        return server

    def worker(self, env: dict[str, str], name: str) -> MailWorkerProcess:
        worker = MailWorkerProcess(env, self.log_dir / f"{name}.log")
        self.started.append(worker)
        return worker

    def keys(self, engine: Engine, count: int, tag: str = "") -> list[str]:
        return issue_keys(engine, SecretBox([self.secret_key]), count, tag)

    def later_mail(self, engine: Engine, server: ServerProcess, sent: int) -> None:
        """Once the ``sent`` mails of the scenario are all marked sent: one more leak, reported now,
        and its mail delivered and marked sent. A worker has then polled the outbox after the drain,
        so what a poll would send again has gone to the SMTP sink by now: the positive sign that a
        late duplicate had its chance, where a pause would only hope so."""
        (token,) = self.keys(engine, 1, tag="later-")
        assert post_alert(HTTP, self.signer, alert_body(token), base_url=server.url).status_code == 200
        wait_for(lambda: table_counts(engine)["sent"] == sent + 1, timeout=60, what="the later mail sent")


@pytest.fixture
def rig(signer: Signer, smtp: SmtpSink, key_server: KeyServer, tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(signer, smtp, key_server.url, tmp_path)
    yield rig
    for process in reversed(rig.started):
        process.stop()


def db_now(engine: Engine) -> datetime:
    """The database server's clock (the same machine's clock the workers read)."""
    with read_transaction(engine) as conn:
        return conn.execute(text("SELECT now()")).scalar_one()


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    with read_transaction(engine) as conn:
        return [dict(r) for r in conn.execute(select(mail_outbox).order_by(mail_outbox.c.id)).mappings()]


def assert_delivered_once(engine: Engine, smtp: SmtpSink, expected: int) -> None:
    """Every outbox row sent, and received exactly once at the SMTP server, nothing else received."""
    rows = outbox_rows(engine)
    assert len(rows) == expected
    assert {r["status"] for r in rows} == {"sent"}
    assert set(smtp.deliveries) == {r["message_id"] for r in rows}
    assert max(smtp.deliveries.values()) == 1, smtp.deliveries.most_common(3)
    assert smtp.total() == expected
    assert set(smtp.recipients.values()) == {1}  # one mail per owner: each owner has one leaked key


# --- crash --------------------------------------------------------------------------------------


@pytest.mark.slow
@ON_POSTGRES
def test_kill_9_mid_batch_then_redelivery_revokes_and_mails_exactly_once(
    engine: Engine, database_url: str, rig: Rig
) -> None:
    """1,000-key batches; the process handling one is SIGKILLed at a different moment each round.

    The batch is one transaction: after the kill it is either wholly recorded or not at all.
    GitHub redelivers to the other process, then to the restarted one; then two standalone mail
    workers drain the outbox together.
    """
    env = rig.env(database_url, mail_worker="off")
    a = rig.server(env, "a")
    b = rig.server(env, "b")
    batch, rounds = 1000, 3
    statuses: list[int] = []
    outcomes: list[tuple[float, str]] = []
    full = 1.0  # seconds one undisturbed 1,000-key batch takes; measured in the first round
    for round_no in range(rounds):
        # Early, halfway, and about when it commits (just before or after): all must end alike.
        delay = (0.05, 0.5 * full, 1.0 * full)[round_no]
        tokens = rig.keys(engine, batch, tag=f"r{round_no}-")
        body = alert_body(*tokens)
        first: dict[str, Any] = {}

        def send(body: bytes = body, first: dict[str, Any] = first) -> None:
            try:
                first["status"] = post_alert(HTTP, rig.signer, body, base_url=a.url).status_code
            except httpx.TransportError as exc:
                first["error"] = type(exc).__name__

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(delay)
        a.kill()
        sender.join(timeout=30)
        recorded = table_counts(engine)["events"] - round_no * batch
        assert recorded in (0, batch), f"partial batch after kill -9: {recorded} events"  # atomic
        outcomes.append((round(delay, 2), ("committed" if recorded else "rolled back") + f", {first}"))
        if "status" in first:
            statuses.append(first["status"])

        started = time.monotonic()
        answer = deliver_until_accepted([b.url], rig.signer, body, statuses)  # GitHub's retry
        if round_no == 0:
            full = time.monotonic() - started
        a.start()
        again = deliver_until_accepted(
            [a.url], rig.signer, body, statuses
        )  # and once more, to the restarted one
        for response in (answer, again):
            assert [e["label"] for e in response.json()] == ["true_positive"] * batch

    assert set(statuses) == {200}, statuses
    counts = table_counts(engine)
    total = rounds * batch
    assert counts == {
        "keys": total,
        "revoked": total,
        "revoked_at_set": total,
        "events": total,
        "events_revoked": total,
        "max_events_per_key": 1,
        "outbox": total,
        "sent": 0,
        "pending": total,
    }

    started = time.monotonic()
    workers = [rig.worker(env, f"mail-{i}") for i in range(2)]
    wait_for(lambda: table_counts(engine)["sent"] == total, timeout=120, interval=0.5, what="outbox drained")
    drain_seconds = time.monotonic() - started
    rig.later_mail(engine, a, total)  # a worker polled after the drain
    assert [w.stop() for w in workers] == [0, 0]  # clean exits: each ended its round, none is sending
    assert_delivered_once(engine, rig.smtp, total + 1)
    print(f"\n1,000-key batch: {full:.2f} s; kill -9 rounds (delay s, outcome): {outcomes}")
    print(f"{total} mails drained by two workers in {drain_seconds:.1f} s")


# --- mail server down ---------------------------------------------------------------------------


@pytest.mark.slow
@ON_POSTGRES
def test_mail_server_down_then_refusing_then_back_delivers_each_mail_once(
    engine: Engine, database_url: str, rig: Rig
) -> None:
    """Port closed, then 451 to every message, then accepting; the backoff is 30 s, then 60 s.

    Waiting out the real backoff would take minutes, so the test moves each row's due time to
    now once it has observed the scheduled retry (the worker runs on the real clock).
    """
    rig.smtp.stop()  # connection refused
    server = rig.server(rig.env(database_url), "server")
    keys_count = 25  # more than one claim (10 rows)
    tokens = rig.keys(engine, keys_count)
    first_try = db_now(engine)
    assert post_alert(HTTP, rig.signer, alert_body(*tokens), base_url=server.url).status_code == 200

    def attempts_all(n: int) -> bool:
        return all(r["attempts"] == n for r in outbox_rows(engine))

    def retry_now() -> None:
        with write_transaction(engine) as conn:
            conn.execute(update(mail_outbox).values(next_attempt_at=text("now()")))

    def assert_backoff(seconds: float, since: datetime) -> None:
        """Each row is due ``seconds`` after its failed attempt, which happened between ``since`` and now
        (exact whatever the machine's load: no tolerance on how long the attempt took)."""
        now = db_now(engine)
        for row in outbox_rows(engine):
            assert row["status"] == "pending" and row["sent_at"] is None
            failed_at = row["next_attempt_at"] - timedelta(seconds=seconds)
            assert since <= failed_at <= now, (since, failed_at, now)

    wait_for(lambda: attempts_all(1), timeout=60, what="first failed attempt")
    assert_backoff(30, since=first_try)
    assert all("Connect" in (r["last_error"] or "") for r in outbox_rows(engine))

    rig.smtp.refuse = True  # up, but answering 451 to every message
    rig.smtp.start()
    second_try = db_now(engine)
    retry_now()
    wait_for(lambda: attempts_all(2), timeout=60, what="second failed attempt")
    assert_backoff(60, since=second_try)
    assert all("451" in (r["last_error"] or "") for r in outbox_rows(engine))
    assert rig.smtp.total() == 0

    rig.smtp.refuse = False
    retry_now()
    wait_for(lambda: rig.smtp.total() >= keys_count, timeout=60, what="delivery after recovery")
    wait_for(lambda: table_counts(engine)["sent"] == keys_count, timeout=60, what="rows marked sent")
    rig.later_mail(engine, server, keys_count)  # the one worker polled again: nothing else was sent again
    assert_delivered_once(engine, rig.smtp, keys_count + 1)
    assert [r["attempts"] for r in outbox_rows(engine)] == [2] * keys_count + [0]  # the later: no failed one


# --- database restart ---------------------------------------------------------------------------


@pytest.mark.slow
def test_database_restart_under_load_answers_503_then_recovers(rig: Rig) -> None:
    """A private PostgreSQL cluster is stopped (fast shutdown) for 3 s while alerts, whoami and
    healthz arrive from four clients; every answer is 200 or a 503 with Retry-After and a JSON body."""
    try:
        cluster = PrivatePostgres()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"cannot run a private PostgreSQL cluster: {exc}")
    with cluster as postgres:
        _database_restart(postgres, rig)


def _database_restart(postgres: PrivatePostgres, rig: Rig) -> None:
    engine = make_engine(postgres.url)
    migrate(engine)
    api_key = rig.keys(engine, 1, tag="api-")[0]
    server = rig.server(rig.env(postgres.url), "server")

    answers: list[tuple[str, float, int, dict[str, str], str]] = []
    pending: list[bytes] = []  # alerts GitHub must redeliver
    lock = threading.Lock()
    stop = threading.Event()
    leaked = rig.keys(engine, 200, tag="leak-")
    next_token = iter(leaked)

    def record(kind: str, response: httpx.Response | None, body: bytes | None = None) -> None:
        with lock:
            if response is None:
                answers.append((kind, time.monotonic(), 0, {}, ""))
            else:
                headers = dict(response.headers)
                answers.append((kind, time.monotonic(), response.status_code, headers, response.text))
            if body is not None and (response is None or response.status_code != 200):
                pending.append(body)

    def alerts() -> None:
        while not stop.is_set():
            with lock:
                token = next(next_token, None)
            if token is None:
                return
            body = alert_body(token)
            try:
                record("alert", post_alert(HTTP, rig.signer, body, base_url=server.url, timeout=30), body)
            except httpx.TransportError:
                record("alert", None, body)
            time.sleep(0.02)

    def probe(kind: str, path: str, headers: dict[str, str]) -> None:
        while not stop.is_set():
            try:
                record(kind, HTTP.get(f"{server.url}{path}", headers=headers, timeout=30))
            except httpx.TransportError:
                record(kind, None)
            time.sleep(0.02)

    threads = [
        threading.Thread(target=alerts),
        threading.Thread(target=alerts),
        threading.Thread(target=probe, args=("whoami", "/v1/whoami", {"Authorization": f"Bearer {api_key}"})),
        threading.Thread(target=probe, args=("healthz", "/healthz", {})),
    ]

    def served(kinds: tuple[str, ...], since: float, times: int) -> bool:
        """Each of ``kinds`` answered 200 at least ``times`` times after ``since``, and 200 last."""
        with lock:
            last = {kind: status for kind, _, status, _, _ in answers}
            ok = Counter(kind for kind, at, status, _, _ in answers if status == 200 and at > since)
        return all(last.get(kind) == 200 and ok[kind] >= times for kind in kinds)

    for thread in threads:
        thread.start()
    everything = ("alert", "whoami", "healthz")
    wait_for(lambda: served(everything, 0.0, 3), timeout=30, what="every kind of request served")
    down_at = time.monotonic()
    postgres.stop("fast")
    time.sleep(3.0)  # the outage itself: how long the database stays away is the scenario
    postgres.start()
    up_at = time.monotonic()

    # Recovered, and kept up: the probes (the alerts may have run out of keys) go on until each has
    # been served 20 times since the database returned, each such request a chance for a connection
    # left dead in the pool to fail it.
    probes = ("whoami", "healthz")
    wait_for(lambda: served(probes, up_at, 20), timeout=30, what="full service after the database returned")
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    failures = [a for a in answers if a[2] != 200]
    assert failures, "the outage was not observed"
    for kind, _, status, headers, body in failures:
        assert status == 503, (kind, status, body[:300])
        assert headers.get("retry-after", "").isdigit(), (kind, headers)
        assert headers.get("content-type") == "application/json", (kind, headers)
        assert "Traceback" not in body and "psycopg" not in body and "sqlalchemy" not in body, body
    assert all(t < up_at + 30 for _, t, s, _, _ in failures if s == 503)
    recovery = {
        kind: min((t for k, t, s, _, _ in answers if k == kind and s == 200 and t > up_at), default=None)
        for kind in ("alert", "whoami", "healthz")
    }
    first_503 = min(t for _, t, s, _, _ in answers if s == 503)

    # GitHub redelivers what failed; the rest of the 200 keys are delivered now.
    statuses: list[int] = []
    remaining = [alert_body(t) for t in next_token]
    for body in pending + remaining:
        deliver_until_accepted([server.url], rig.signer, body, statuses, timeout=30)
    assert set(statuses) == {200}
    counts = table_counts(engine)
    assert counts["revoked"] == counts["events"] == counts["events_revoked"] == counts["outbox"] == 200
    assert counts["max_events_per_key"] == 1
    wait_for(lambda: table_counts(engine)["sent"] == 200, timeout=30, what="mail after the restart")
    rig.later_mail(engine, server, 200)  # one worker: every mail it was sending before has gone out
    assert_delivered_once(engine, rig.smtp, 201)
    engine.dispose()
    seen = Counter(kind for kind, *_ in failures)
    print(
        f"\ndatabase down {up_at - down_at:.1f} s; first 503 after {first_503 - down_at:.2f} s; "
        f"503s: {dict(seen)}; first 200 after restart: "
        + ", ".join(f"{k} +{(t - up_at):.2f} s" for k, t in recovery.items() if t is not None)
    )


# --- concurrency --------------------------------------------------------------------------------


@pytest.mark.slow
@ON_POSTGRES
def test_same_alert_to_two_processes_at_once_revokes_and_mails_once(
    engine: Engine, database_url: str, rig: Rig
) -> None:
    """Ten rounds: one batch of five keys, sent to two processes at the same instant; the two
    in-process mail workers and a standalone one share the outbox."""
    env = rig.env(database_url, mail_poll_interval="0.05")
    servers = [rig.server(env, name) for name in ("a", "b")]
    worker = rig.worker(env, "mail")
    rounds, per_round = 10, 5
    statuses: list[int] = []
    labels: list[list[str]] = []
    for round_no in range(rounds):
        body = alert_body(*rig.keys(engine, per_round, tag=f"c{round_no}-"))
        barrier = threading.Barrier(2)

        def deliver(url: str, body: bytes = body, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            response = post_alert(HTTP, rig.signer, body, base_url=url)
            statuses.append(response.status_code)
            if response.status_code == 200:
                labels.append([e["label"] for e in response.json()])

        threads = [threading.Thread(target=deliver, args=(s.url,)) for s in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert set(statuses) == {200}, statuses
    assert labels == [["true_positive"] * per_round] * (2 * rounds)  # both answers say so
    total = rounds * per_round
    counts = table_counts(engine)
    assert counts["revoked"] == counts["events"] == counts["events_revoked"] == counts["outbox"] == total
    assert counts["max_events_per_key"] == 1
    wait_for(lambda: table_counts(engine)["sent"] == total, timeout=30, what="outbox drained")
    rig.later_mail(engine, servers[0], total)  # a worker polled after the drain
    # Clean exits (the servers' workers too): each ended its round, none is sending.
    assert [server.shut_down() for server in servers] == [True, True]
    assert worker.stop() == 0
    assert_delivered_once(engine, rig.smtp, total + 1)


@pytest.mark.slow
@ON_POSTGRES
def test_overlapping_large_batches_at_once_do_not_deadlock(
    engine: Engine, database_url: str, rig: Rig
) -> None:
    """Two batches of 600 keys sharing 300, to two processes at once. Keys are locked in 500-hash
    chunks; unless every batch locks in one global order, PostgreSQL finds a deadlock and one
    delivery fails (a 503 and a retry at best)."""
    env = rig.env(database_url, mail_worker="off")
    servers = [rig.server(env, name) for name in ("a", "b")]
    statuses: list[int] = []
    rounds = 2
    for round_no in range(rounds):
        tokens = rig.keys(engine, 900, tag=f"d{round_no}-")
        bodies = [alert_body(*tokens[:600]), alert_body(*tokens[300:])]
        barrier = threading.Barrier(2)

        def deliver(url: str, body: bytes, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            statuses.append(post_alert(HTTP, rig.signer, body, base_url=url).status_code)

        pairs = zip(servers, bodies, strict=True)
        threads = [threading.Thread(target=deliver, args=(s.url, b)) for s, b in pairs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert statuses == [200] * (2 * rounds), statuses
    counts = table_counts(engine)
    total = rounds * 900
    assert counts["revoked"] == counts["outbox"] == counts["events_revoked"] == total
    assert counts["events"] == total and counts["max_events_per_key"] == 1


@ON_POSTGRES
def test_mail_delivered_while_the_database_is_away_is_recorded_later_not_resent(engine: Engine) -> None:
    """The window the database restart test can only hit by chance, made certain: the SMTP server
    accepted the mail, then marking it sent fails. After the lease ends it must not go out again."""

    from partner_endpoint.alerts.batch import parse_batch
    from partner_endpoint.alerts.receiver import sightings
    from partner_endpoint.clock import SYSTEM_CLOCK
    from partner_endpoint.mail.composer import Composer
    from partner_endpoint.mail.letters import MailContext
    from partner_endpoint.mail.worker import MailWorker
    from partner_endpoint.ops.metrics import Metrics
    from partner_endpoint.services.leaks import LeakService
    from partner_endpoint.store.outbox import LEASE

    tokens = issue_keys(engine, SecretBox([Fernet.generate_key().decode()]), 3)
    clock = Clock(at=SYSTEM_CLOCK.now())
    LeakService(engine, clock, policy="revoke", sender="s@x.test").respond(
        sightings(parse_batch(alert_body(*tokens)).alerts)
    )
    sent: list[str] = []

    class Transport:
        async def send(self, mail: Any) -> None:
            sent.append(mail.message_id)

    composer = Composer(MailContext(sender="s@x.test", docs_url="d"))
    worker = MailWorker(engine, Transport(), Metrics(), composer, clock=clock)
    database_down = [True]
    mark_sent = worker._mark_sent

    def flaky_mark_sent(mail_ids: list[int]) -> None:
        if database_down[0]:
            raise OperationalError("UPDATE mail_outbox", {}, Exception("server closed the connection"))
        mark_sent(mail_ids)

    worker._mark_sent = flaky_mark_sent  # type: ignore[method-assign]
    assert asyncio.run(worker.run_once()) == 3  # every claimed mail is still tried
    assert table_counts(engine)["pending"] == 3
    database_down[0] = False
    clock.advance((LEASE + timedelta(seconds=1)).total_seconds())  # the lease is over: due again
    assert asyncio.run(worker.run_once()) == 0
    assert sorted(sent) == sorted(r["message_id"] for r in outbox_rows(engine))  # each once
    assert table_counts(engine)["sent"] == 3


@ON_POSTGRES
def test_overlapping_batches_lock_keys_in_one_global_order(engine: Engine) -> None:
    """The deadlock the two-process test can only hit by chance, made certain.

    Batch X holds its first 500 hashes' keys and pauses; batch Y, whose first chunk mixes keys of
    X's first and second chunks, then locks what it can in id order. If keys were locked per hash
    chunk, X would now wait for a key Y holds while Y waits for X: PostgreSQL aborts one of them.
    """
    import rules
    from partner_endpoint.alerts.batch import parse_batch
    from partner_endpoint.alerts.receiver import sightings
    from partner_endpoint.clock import SYSTEM_CLOCK
    from partner_endpoint.services.leaks import LeakService

    issued = issue_keys(engine, SecretBox([Fernet.generate_key().decode()]), 1300, tag="lo-")
    key_id = {token: i for i, token in enumerate(issued)}  # issue order is id order
    pool = sorted(issued, key=rules.identity)  # hash order, as the batch is chunked
    start = next(
        a
        for a in range(0, 300)
        if min(key_id[t] for t in pool[a + 500 : a + 600]) < min(key_id[t] for t in pool[a + 400 : a + 500])
    )
    x = pool[start : start + 600]
    y = pool[start + 400 : start + 1000]
    x_locked, y_started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def waits_for(holder: int) -> bool:
        """Whether a session waits for a lock that session ``holder`` holds (PostgreSQL's own view)."""
        with read_transaction(engine) as conn:
            waiting = text("SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))")
            return bool(conn.execute(waiting, {"holder": holder}).scalar_one())

    def pause_after_first_lock(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread() is threads[0] and "FOR UPDATE" in statement and not x_locked.is_set():
            x_locked.set()
            y_started.wait(10)
            # X goes on once Y is blocked on a key X holds (having locked what it could before it).
            x_session = cursor.connection.info.backend_pid
            wait_for(lambda: waits_for(x_session), timeout=30, interval=0.01, what="Y blocked by X")

    event.listen(engine, "after_cursor_execute", pause_after_first_lock)
    leaks = LeakService(engine, SYSTEM_CLOCK, policy="revoke", sender="s@x.test")

    def record(tokens: list[str], paused: bool) -> None:
        try:
            if not paused:
                x_locked.wait(10)
                y_started.set()
            leaks.respond(sightings(parse_batch(alert_body(*tokens)).alerts))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=record, args=(x, True)),
        threading.Thread(target=record, args=(y, False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    counts = table_counts(engine)
    assert counts["revoked"] == counts["outbox"] == counts["events"] == 1000
