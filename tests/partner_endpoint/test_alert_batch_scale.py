"""A large alert batch costs a few statements, not a few per key (speed itself: bench/alert_batch.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from partner_endpoint.alerts.batch import parse_batch
from partner_endpoint.alerts.receiver import sightings
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.models import api_keys, leak_events, mail_outbox
from partner_endpoint.store.secretbox import SecretBox
from tests.support.api_auth import count_statements
from tests.support.github import alert_body
from tests.support.partner import Clock, add_account, add_key, rows


def issue_many(engine: Engine, box: SecretBox, clock: Clock, count: int) -> list[str]:
    with write_transaction(engine) as conn:
        account = add_account(conn, "many@example.com", [], clock.now())
        return [add_key(conn, box, account, f"k{i}", clock.now()).api_key for i in range(count)]


def deliver(engine: Engine, tokens: list[str], clock: Clock) -> list[str]:
    reported = sightings(parse_batch(alert_body(*tokens)).alerts)
    with count_statements(engine) as sent:
        LeakService(engine, clock, policy="revoke", sender="s@soundpiece.invalid").respond(reported)
    return sent


def test_statements_do_not_grow_with_the_batch(engine: Engine, box: SecretBox, clock: Clock) -> None:
    """Before: one upsert per sighting (a 10,000-key batch took 20-34 s). Now the work is in bulk:
    one array per statement on PostgreSQL; on SQLite, chunks of 500 values and pages of 1,000 rows
    add a few statements (here, 1,200 keys: two more chunks for each of the three lookups by key
    or token, one more page for each of the three inserts: events, mail, activity)."""
    few = issue_many(engine, box, clock, 6)
    many = issue_many(engine, box, clock, 1200)
    small, large = deliver(engine, few, clock), deliver(engine, many, clock)
    assert len(large) - len(small) <= 9, (len(small), len(large))
    # ... and every key is revoked, recorded and mailed once.
    assert {r["status"] for r in rows(engine, api_keys)} == {"revoked"}
    assert len(rows(engine, leak_events)) == len(rows(engine, mail_outbox)) == 1206
    redelivered = deliver(engine, many, clock)
    assert len(redelivered) <= len(large)
    assert len(rows(engine, leak_events)) == len(rows(engine, mail_outbox)) == 1206


def test_one_location_twice_in_a_batch_is_one_event_and_the_first_report_counts(
    engine: Engine, box: SecretBox, clock: Clock, issue: Callable[..., Any]
) -> None:
    first, second = issue(label="a"), issue(label="b")
    entries = [
        {"token": first.api_key, "type": "soundpiece_api_key", "url": "https://x/1", "source": "content"},
        {"token": second.api_key, "type": "soundpiece_api_key", "url": "https://x/1", "source": "content"},
        {"token": first.api_key, "type": "soundpiece_api_key", "url": "https://x/1", "source": "CONTENT"},
        {"token": first.api_key, "type": "soundpiece_api_key", "url": "https://x/2", "source": "content"},
    ]
    reported = sightings(parse_batch(json.dumps(entries).encode()).alerts)
    outcome = LeakService(engine, clock, policy="revoke", sender="s@soundpiece.invalid").respond(reported)
    assert [action for _hash, _key, action in outcome.actions] == [
        "revoked",
        "revoked",
        "already_revoked",
        "already_revoked",
    ]
    events = rows(engine, leak_events)
    assert [(e["key_id"], e["url"], e["action"]) for e in events] == [
        (first.key_id, "https://x/1", "revoked"),
        (second.key_id, "https://x/1", "revoked"),
        (first.key_id, "https://x/2", "already_revoked"),
    ]
    mails = rows(engine, mail_outbox)
    assert sorted((m["key_id"], m["leak_event_id"]) for m in mails) == [
        (first.key_id, events[0]["id"]),
        (second.key_id, events[1]["id"]),
    ]
