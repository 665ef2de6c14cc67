"""One bad entry or character in a signed batch never blocks the revocation of the keys beside it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

import rules
from partner_endpoint.store.models import leak_events, mail_outbox
from tests.support.github import Signer, post_alert
from tests.support.invalid_text import invalid_text
from tests.support.partner import Issued, TestClient, key_status, rows, scrape
from tests.support.services import ON_SQLITE


def entry(token: str, url: str = "https://github.com/o/r/blob/main/.env", **fields: object) -> dict:
    return {"token": token, "type": "soundpiece_api_key", "url": url, "source": "content", **fields}


def signed_batch(client: TestClient, signer: Signer, entries: list[object]):
    # ensure_ascii: lone surrogates travel as "\ud800" escapes, the body itself is valid UTF-8 (as GitHub's).
    return post_alert(client, signer, json.dumps(entries).encode())


def test_a_lone_surrogate_token_is_refused_alone(client: TestClient, signer: Signer) -> None:
    """Before: 500 (hashing the token raised UnicodeEncodeError)."""
    response = signed_batch(client, signer, [entry("\ud800"), entry("spk_\udfff")])
    assert response.status_code == 200
    assert response.json() == []
    assert "soundpiece_alert_entries_rejected_total 2.0" in scrape(client)


@pytest.mark.parametrize("field", ["url", "source", "type"])
def test_an_issued_key_beside_a_lone_surrogate_is_revoked_and_a_retry_changes_nothing(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued], field: str
) -> None:
    """Before: 500 and the key stayed active, on every retry of the same batch."""
    victim, other = issue(label="victim"), issue(label="other")
    entries = [entry(victim.api_key, **{field: "x\ud800y"}), entry(other.api_key)]
    first = signed_batch(client, signer, entries)
    assert first.status_code == 200
    assert [e["label"] for e in first.json()] == ["true_positive", "true_positive"]
    assert {key_status(engine, victim.key_id), key_status(engine, other.key_id)} == {"revoked"}
    events = rows(engine, leak_events)
    stored = {"url": events[0]["url"], "source": events[0]["source"], "type": events[0]["token_type"]}
    assert stored[field] == "x\ufffdy"
    assert len(rows(engine, mail_outbox)) == 2
    again = signed_batch(client, signer, entries)
    assert again.status_code == 200 and again.json() == first.json()
    assert len(rows(engine, leak_events)) == 2 and len(rows(engine, mail_outbox)) == 2


def test_nul_in_a_url_is_stored_on_every_backend(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    """Before, on PostgreSQL: 500 ("text fields cannot contain NUL"), and the key stayed active."""
    victim = issue()
    response = signed_batch(client, signer, [entry(victim.api_key, url="https://x/\x00.env")])
    assert response.status_code == 200
    assert key_status(engine, victim.key_id) == "revoked"
    (event,) = rows(engine, leak_events)
    assert event["url"] == "https://x/\ufffd.env"


@pytest.mark.parametrize(
    "bad",
    [
        5,
        None,
        "spk",
        [],
        {"type": "t"},
        {"token": 5, "type": "t"},
        {"token": "x"},
        {"token": "", "type": "t"},
    ],
)
def test_a_malformed_entry_is_skipped_and_the_rest_revoked(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued], bad: object
) -> None:
    """Before: the whole batch was 400, and the key in it was never revoked."""
    victim = issue()
    response = signed_batch(client, signer, [bad, entry(victim.api_key), entry("junk")])
    assert response.status_code == 200
    assert response.json() == [
        {
            "token_hash": rules.identity(victim.api_key),
            "token_type": "soundpiece_api_key",
            "label": "true_positive",
        },
        {"token_hash": rules.identity("junk"), "token_type": "soundpiece_api_key", "label": "false_positive"},
    ]
    assert key_status(engine, victim.key_id) == "revoked"
    assert "soundpiece_alert_entries_rejected_total 1.0" in scrape(client)


@ON_SQLITE
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    url=invalid_text(),
    source=invalid_text(max_size=30),
    kind=invalid_text(max_size=30),
    junk=st.lists(
        st.one_of(
            st.integers(),
            st.none(),
            invalid_text(),
            st.fixed_dictionaries({"token": invalid_text(), "type": st.none() | invalid_text()}),
        ),
        max_size=3,
    ),
    position=st.integers(0, 3),
)
def test_any_text_beside_an_issued_key_still_revokes_it(
    client: TestClient,
    signer: Signer,
    engine: Engine,
    issue: Callable[..., Issued],
    url: str,
    source: str,
    kind: str,
    junk: list[object],
    position: int,
) -> None:
    victim = issue()  # a fresh key per example: hypothesis runs this function-scoped fixture once per test
    entries = list(junk)
    entries.insert(
        min(position, len(entries)), {"token": victim.api_key, "type": kind, "url": url, "source": source}
    )
    response = signed_batch(client, signer, entries)
    assert response.status_code == 200
    assert rules.identity(victim.api_key) in {
        e["token_hash"] for e in response.json() if e["label"] == "true_positive"
    }
    assert key_status(engine, victim.key_id) == "revoked"
