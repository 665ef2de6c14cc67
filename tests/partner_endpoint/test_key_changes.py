"""The key change log (``store.key_changes``) on SQLite and PostgreSQL: written with every change that
authentication caches, in the same transaction, and read back exactly once, in commit order."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select

import rules
from partner_endpoint.services.accounts import AccountService
from partner_endpoint.store import accounts, api_keys, key_changes
from partner_endpoint.store.db import NotFound, read_transaction, write_transaction
from partner_endpoint.store.key_changes import KeyChange
from partner_endpoint.store.leaks import Sighting, record_batch
from partner_endpoint.store.models import key_changes as key_changes_table
from tests.support.partner import Clock, Issued


def cursor_now(engine: Engine) -> key_changes.Cursor:
    with read_transaction(engine) as conn:
        return key_changes.start(conn)


def changes_since(engine: Engine, cursor: key_changes.Cursor) -> tuple[list[KeyChange], key_changes.Cursor]:
    with read_transaction(engine) as conn:
        return key_changes.read(conn, cursor)


def log_size(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(key_changes_table)).scalar_one())


def sighting(token: str) -> Sighting:
    return Sighting(
        rules.identity(token), "soundpiece_api_key", "https://github.com/o/r", "content", token[-8:]
    )


def test_revocations_flags_and_allowlists_are_logged_once(
    engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    first, second, third = issue(), issue(email="b@example.com"), issue(email="c@example.com")
    cursor = cursor_now(engine)
    with write_transaction(engine) as conn:
        assert api_keys.revoke(conn, first.key_id, clock.now())
    with write_transaction(engine) as conn:
        assert not api_keys.revoke(conn, first.key_id, clock.now())  # no change, no row
    with write_transaction(engine) as conn:
        record_batch(conn, [sighting(second.api_key)], policy="flag", now=clock.now())
    with write_transaction(engine) as conn:
        record_batch(conn, [sighting(second.api_key)], policy="flag", now=clock.now())  # already flagged
    with write_transaction(engine) as conn:
        record_batch(
            conn, [sighting(third.api_key), sighting(second.api_key)], policy="revoke", now=clock.now()
        )
    with write_transaction(engine) as conn:
        accounts.set_allowlist(conn, third.account_id, ["192.0.2.0/24"], clock.now())
    changes, cursor = changes_since(engine, cursor)
    assert changes == [
        KeyChange(first.key_id, None),
        KeyChange(second.key_id, None),
        *sorted([KeyChange(second.key_id, None), KeyChange(third.key_id, None)], key=lambda c: c.key_id or 0),
        KeyChange(None, third.account_id),
    ]
    assert changes_since(engine, cursor)[0] == []  # read once


def test_a_rolled_back_change_leaves_no_row(
    engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    issued = issue()
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        api_keys.revoke(conn, issued.key_id, clock.now())
        raise RuntimeError("the caller's transaction fails after the revocation")
    assert log_size(engine) == 0
    with pytest.raises(NotFound), write_transaction(engine) as conn:
        accounts.set_allowlist(conn, 99999, [], clock.now())
    with pytest.raises(ValueError):
        AccountService(engine, clock).set_allowlist(issued.account_id, ["203.0.113.5/2"])
    assert log_size(engine) == 0


def test_a_large_change_is_one_row_that_says_everything(engine: Engine, clock: Clock) -> None:
    cursor = cursor_now(engine)
    with write_transaction(engine) as conn:
        key_changes.record(conn, clock.now(), key_ids=range(key_changes.BULK + 1))
    changes, _ = changes_since(engine, cursor)
    assert len(changes) == 1 and changes[0].everything


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_change_committed_after_a_newer_one_is_not_missed(engine: Engine, clock: Clock) -> None:
    """PostgreSQL hands out ids at insert: the row with the smaller id may commit last. A cursor on the
    id alone would skip it for ever; the transaction-id window reads it when it commits."""
    cursor = cursor_now(engine)
    with engine.connect() as slow:
        slow_transaction = slow.begin()
        key_changes.record(slow, clock.now(), key_ids=[1])  # smaller id, still uncommitted
        with write_transaction(engine) as fast:
            key_changes.record(fast, clock.now(), key_ids=[2])
        changes, cursor = changes_since(engine, cursor)
        assert changes == [KeyChange(2, None)]
        changes, cursor = changes_since(engine, cursor)
        assert changes == []  # read once, though its transaction id is still inside the window
        slow_transaction.commit()
    changes, cursor = changes_since(engine, cursor)
    assert changes == [KeyChange(1, None)]
    assert changes_since(engine, cursor)[0] == []
