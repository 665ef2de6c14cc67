"""The API's key cache: no database for a cached key, revocation at once here and through the change log
elsewhere, a cache that is not believed once it may be stale, bounded work for never-issued keys.

Apps here are made with a long ``key_change_delay`` where a test must not depend on the background
reader's timing, and the log is then read by hand (``sync``), so every step is deterministic.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest
from sqlalchemy import Engine, event, text

import rules
from partner_endpoint.api.key_cache import KeyCache
from partner_endpoint.api.key_directory import LOOKUPS, KeyDirectory
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.store import accounts, api_keys
from partner_endpoint.store.api_keys import AuthRecord
from partner_endpoint.store.db import write_transaction
from tests.support.api_auth import DENIED, count_statements, whoami
from tests.support.github import Signer, alert_body, post_alert
from tests.support.partner import Clock, Issued, TestClient, add_key
from tests.support.processes import HANG_GUARD

HOUR = 3600.0


def sync(client: TestClient) -> None:
    """Read the key change log now, as the background task does twice per delay."""
    client.portal.call(client.app.state.key_directory.sync)


@pytest.fixture
def steady(make_client: Callable[..., TestClient]) -> TestClient:
    """An app that read the log at start-up and will not read it again for half an hour (unless a
    test says so), so its cache stays believed meanwhile."""
    return make_client(key_change_delay=HOUR)


def test_a_cached_key_is_authenticated_without_the_database_or_a_thread(
    steady: TestClient, engine: Engine, issue: Callable[..., Issued], monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = issue()
    assert whoami(steady, issued.api_key).status_code == 200  # fills the cache
    threads: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        threads.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)  # what run_in_threadpool goes through
    with count_statements(engine) as statements:
        for _ in range(20):
            assert whoami(steady, issued.api_key).status_code == 200
    assert statements == []
    assert threads == []
    assert whoami(steady, rules.API_KEY.mint()).status_code == 401  # a miss does use one: the counter works
    assert len(threads) == 1


def test_revocation_in_this_process_applies_at_once(
    steady: TestClient, engine: Engine, signer: Signer, issue: Callable[..., Issued]
) -> None:
    """The alert endpoint drops the key after its commit: no wait for the log (an hour, here)."""
    victim = issue()
    assert whoami(steady, victim.api_key).status_code == 200
    assert post_alert(steady, signer, alert_body(victim.api_key)).status_code == 200
    assert whoami(steady, victim.api_key).status_code == 401


def test_changes_made_elsewhere_arrive_through_the_log(
    steady: TestClient, engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    """Another process (here: the store, straight on the database) revokes a key and fences an account;
    this app refuses both after its next read of the log."""
    revoked, fenced = issue(), issue(email="fenced@example.com")
    assert whoami(steady, revoked.api_key).status_code == whoami(steady, fenced.api_key).status_code == 200
    with write_transaction(engine) as conn:
        api_keys.revoke(conn, revoked.key_id, clock.now())
        accounts.set_allowlist(conn, fenced.account_id, ["192.0.2.0/24"], clock.now())
    assert (
        whoami(steady, revoked.api_key).status_code == 200
    )  # not read yet: the log is what carries the change
    sync(steady)
    assert whoami(steady, revoked.api_key).status_code == 401
    assert whoami(steady, fenced.api_key).status_code == 401  # from 127.0.0.1
    with write_transaction(engine) as conn:
        accounts.set_allowlist(conn, fenced.account_id, [], clock.now())
    sync(steady)
    assert whoami(steady, fenced.api_key).status_code == 200


def test_the_account_hook_drops_every_key_of_the_account(
    steady: TestClient, engine: Engine, issue: Callable[..., Issued], box: Any, clock: Clock
) -> None:
    issued = issue()
    with write_transaction(engine) as conn:
        second = add_key(conn, box, issued.account_id, "second", clock.now())
    assert whoami(steady, issued.api_key).status_code == whoami(steady, second.api_key).status_code == 200
    with write_transaction(engine) as conn:
        conn.execute(text("UPDATE api_keys SET status = 'revoked'"))  # behind the log's back
    assert whoami(steady, issued.api_key).status_code == 200  # cached
    steady.app.state.key_directory.account_changed(issued.account_id)
    assert whoami(steady, issued.api_key).status_code == whoami(steady, second.api_key).status_code == 401


def test_a_never_issued_key_is_looked_up_once(steady: TestClient, engine: Engine) -> None:
    never_issued = rules.API_KEY.mint()
    with count_statements(engine) as statements:
        assert whoami(steady, never_issued).status_code == 401
    assert any("api_keys" in s for s in statements)
    with count_statements(engine) as statements:
        for _ in range(10):
            assert whoami(steady, never_issued).status_code == 401
    assert statements == []


# --- the directory itself, with a clock of our own for freshness ----------------------------------


def directory_for(engine: Engine, freshness: Clock, clock: Clock, **overrides: Any) -> KeyDirectory:
    """A directory whose idea of "the log was read recently" follows ``freshness``, moved by hand."""
    options: dict[str, Any] = {
        "change_delay": 1.0,
        "max_keys": 1000,
        "clock": clock,
        "freshness": freshness,
    }
    return KeyDirectory(engine, Metrics(), **(options | overrides))


def test_the_cache_is_not_believed_once_the_log_may_have_moved_on(
    engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    """A change made elsewhere is refused within the delay even when the log cannot be read: after
    the delay without a successful read, every lookup goes to the database."""
    issued = issue()
    key_hash = rules.identity(issued.api_key)
    freshness = Clock()
    directory = directory_for(engine, freshness, clock)

    async def scenario() -> None:
        assert directory.cached(key_hash) is None  # never read the log: nothing is believed
        await directory.sync()
        entry = await directory.load(key_hash)
        assert entry is not None and directory.cached(key_hash) is entry
        with write_transaction(engine) as conn:
            api_keys.revoke(conn, issued.key_id, clock.now())
            conn.execute(text("DROP TABLE key_changes"))  # the log cannot be read any more
        freshness.advance(0.6)
        await directory.sync()  # fails
        freshness.advance(0.39)
        assert directory.cached(key_hash) is entry  # within the delay of the last good read
        freshness.advance(0.02)
        assert directory.cached(key_hash) is None
        reloaded = await directory.load(key_hash)
        assert reloaded is not None and reloaded.status == "revoked"

    asyncio.run(scenario())


def waiting_for_a_lock(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is suspended in ``asyncio.Lock.acquire``, read from its chain of awaits."""
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None)
        lock = frame is not None and frame.f_code.co_name == "acquire" and frame.f_locals.get("self")
        if isinstance(lock, asyncio.Lock):
            return True
        awaited = getattr(awaited, "cr_await", None)
    return False


def test_reads_of_the_log_do_not_overlap(engine: Engine, issue: Callable[..., Issued], clock: Clock) -> None:
    """A read asked for while the background one is still running (as a test's or an operator's
    would be) waits for it: otherwise the slower first read would finish last and clear a fill
    made in between, as CI once saw on PostgreSQL.

    No pauses: the first read is held in its thread until the second request has either finished
    (its read and a fill done while the first is under way: the overlap) or is waiting for the
    first one; then it finishes."""
    issued = issue()
    key_hash = rules.identity(issued.api_key)
    directory = directory_for(engine, Clock(), clock)
    statements = 0
    first_read, release = threading.Event(), threading.Event()

    def hold_first(*_args: Any) -> None:
        nonlocal statements
        statements += 1
        if statements == 1:  # the background task's first read, on a slow database
            first_read.set()
            assert release.wait(HANG_GUARD), "the first read was never let go"

    async def sync_then_fill() -> AuthRecord | None:
        await directory.sync()
        return await directory.load(key_hash)

    async def scenario() -> None:
        background = asyncio.create_task(directory.sync())
        await anyio.to_thread.run_sync(first_read.wait, HANG_GUARD)  # its read is under way, in a thread
        asked = asyncio.create_task(sync_then_fill())
        deadline = time.monotonic() + HANG_GUARD
        while not (asked.done() or waiting_for_a_lock(asked)):
            assert time.monotonic() < deadline, "the second read neither ran nor waited"
            await asyncio.sleep(0.001)
        release.set()
        entry = await asked
        await background
        assert entry is not None and directory.cached(key_hash) is entry

    event.listen(engine, "before_cursor_execute", hold_first)
    try:
        asyncio.run(scenario())
    finally:
        release.set()
        event.remove(engine, "before_cursor_execute", hold_first)
    assert statements >= 3


def test_misses_read_the_database_a_few_at_a_time(engine: Engine, clock: Clock) -> None:
    """A flood of never-issued keys meets at most LOOKUPS concurrent database reads per process."""
    directory = directory_for(engine, Clock(), clock)
    running, peak, lock = 0, 0, threading.Lock()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal running, peak
        if "api_keys" in statement:
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.05)  # a slow database: without a cap every miss would be in here at once

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal running
        if "api_keys" in statement:
            with lock:
                running -= 1

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:

        async def flood() -> list[AuthRecord | None]:
            return await asyncio.gather(
                *(directory.load(rules.identity(rules.API_KEY.mint())) for _ in range(24))
            )

        assert asyncio.run(flood()) == [None] * 24
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    assert 1 <= peak <= LOOKUPS


def test_a_fill_that_raced_a_change_is_not_kept() -> None:
    cache = KeyCache(max_keys=10, max_unknown=10)
    record = AuthRecord(1, 7, "k", "active", None, ())
    generation = cache.generation  # a lookup starts...
    cache.drop_key(1)  # ...the key changes meanwhile...
    assert not cache.put("h", record, generation)  # ...so what it read is stale
    assert cache.get("h") is None
    assert cache.put("h", record, cache.generation)
    assert cache.get("h") is not None


def test_the_caches_are_bounded() -> None:
    cache = KeyCache(max_keys=3, max_unknown=2)
    for key_id in range(5):
        record = AuthRecord(key_id, key_id % 2, "k", "active", None, ())
        cache.put(f"h{key_id}", record, cache.generation)
        cache.put_unknown(f"u{key_id}")
    assert len(cache) == 3 and [cache.get(f"h{i}") is not None for i in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert [cache.is_unknown(f"u{i}") for i in range(5)] == [False, False, False, True, True]
    cache.drop_account(1)  # keys 1 and 3; 1 is gone already
    assert [cache.get(f"h{i}") is not None for i in range(5)] == [False, False, True, False, True]
    cache.drop_key(4)
    cache.drop_key(4)
    assert len(cache) == 1


def test_disabled_cache_reads_the_database_every_time(
    make_client: Callable[..., TestClient], engine: Engine, issue: Callable[..., Issued]
) -> None:
    client = make_client(auth_cache_size=0, key_change_delay=HOUR)
    issued = issue()
    with count_statements(engine) as statements:
        for _ in range(3):
            assert whoami(client, issued.api_key).status_code == 200
    assert len([s for s in statements if "api_keys" in s]) == 3
    assert whoami(client, rules.API_KEY.mint()).json() == DENIED
