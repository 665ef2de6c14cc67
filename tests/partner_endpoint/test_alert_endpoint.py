"""``POST /v1/secret-scanning/github`` against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

import rules
from partner_endpoint.alerts.batch import parse_batch
from partner_endpoint.alerts.receiver import sightings
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.store import api_keys as key_store
from partner_endpoint.store.db import make_engine, write_transaction
from partner_endpoint.store.models import leak_events, mail_outbox
from tests.support.api_auth import whoami
from tests.support.github import ALERT_PATH, KeyServer, Signer, alert_body, post_alert
from tests.support.partner import Issued, TestClient, key_status, rows, scrape, snapshot


def test_leaked_api_key_is_revoked_recorded_and_mailed(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    victim, bystander = issue(label="ci deploy"), issue(label="other")
    body = alert_body(victim.api_key, url="https://github.com/o/r/blob/main/.env", source="commit")
    response = post_alert(client, signer, body)
    assert response.status_code == 200
    assert response.json() == [
        {
            "token_hash": rules.identity(victim.api_key),
            "token_type": "soundpiece_api_key",
            "label": "true_positive",
        }
    ]
    assert key_status(engine, victim.key_id) == "revoked"
    assert key_status(engine, bystander.key_id) == "active"
    (event,) = rows(engine, leak_events)
    assert event["key_id"] == victim.key_id
    assert event["token_hash"] == rules.identity(victim.api_key)
    assert (event["url"], event["source"], event["action"]) == (
        "https://github.com/o/r/blob/main/.env",
        "commit",
        "revoked",
    )
    (mail,) = rows(engine, mail_outbox)
    assert mail["recipient"] == "owner@example.com"
    assert mail["status"] == "pending"
    assert victim.api_key not in mail["payload"] and victim.signing_secret not in mail["payload"]
    notice = json.loads(mail["payload"])  # rendered by the mail worker (tests/partner_endpoint/test_mail.py)
    assert (notice["key_id"], notice["key_suffix"], notice["action"]) == (
        victim.key_id,
        victim.api_key[-4:],
        "revoked",
    )
    # The revoked key no longer authenticates.
    assert whoami(client, victim.api_key).status_code == 401


def test_leaked_signing_secret_revokes_the_pair(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    victim = issue()
    response = post_alert(client, signer, alert_body(victim.signing_secret))
    assert response.json()[0]["label"] == "true_positive"
    assert response.json()[0]["token_type"] == "soundpiece_webhook_secret"
    assert key_status(engine, victim.key_id) == "revoked"
    assert len(rows(engine, mail_outbox)) == 1


def test_redelivery_and_replay_change_nothing(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    victim = issue()
    body = alert_body(victim.api_key, victim.signing_secret)
    first = post_alert(client, signer, body)
    state = snapshot(engine)
    (event_before, _) = rows(engine, leak_events)
    for _ in range(3):
        again = post_alert(client, signer, body)
        assert again.status_code == 200
        assert again.json() == first.json()
    assert snapshot(engine) == state
    assert state["mails"] == 1
    assert state["leaks"] == 2
    (event_after, _) = rows(engine, leak_events)
    assert event_after["first_seen"] == event_before["first_seen"]
    assert event_after["action"] == "revoked"


def test_same_key_in_one_batch_many_times_mails_once(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    victim = issue()
    body = json.dumps(
        [
            {
                "token": victim.api_key,
                "type": "soundpiece_api_key",
                "url": f"https://x/{i}",
                "source": "Content",
            }
            for i in range(3)
        ]
        + [{"token": victim.api_key, "type": "soundpiece_api_key", "url": "https://x/0", "source": "content"}]
    ).encode()
    response = post_alert(client, signer, body)
    assert [e["label"] for e in response.json()] == ["true_positive"] * 4
    events = rows(engine, leak_events)
    assert [e["action"] for e in events] == ["revoked", "already_revoked", "already_revoked"]
    assert len(rows(engine, mail_outbox)) == 1


def test_flag_policy_keeps_the_key_working(
    make_client: Callable[..., TestClient], signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    client = make_client(leak_policy="flag")
    victim = issue(label="flagged one")
    body = alert_body(victim.api_key)
    assert post_alert(client, signer, body).json()[0]["label"] == "true_positive"
    assert post_alert(client, signer, alert_body(victim.api_key, url="https://elsewhere")).status_code == 200
    assert key_status(engine, victim.key_id) == "flagged"
    assert [e["action"] for e in rows(engine, leak_events)] == ["flagged", "already_flagged"]
    (mail,) = rows(engine, mail_outbox)
    assert json.loads(mail["payload"])["action"] == "flagged"
    assert whoami(client, victim.api_key).status_code == 200


def test_already_revoked_key_records_the_sighting_only(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued], clock
) -> None:
    victim = issue()
    with write_transaction(engine) as conn:
        assert key_store.revoke(conn, victim.key_id, clock.now())
    response = post_alert(client, signer, alert_body(victim.api_key))
    assert response.json()[0]["label"] == "true_positive"
    (event,) = rows(engine, leak_events)
    assert event["action"] == "already_revoked"
    assert rows(engine, mail_outbox) == []


@pytest.mark.parametrize(
    "token",
    [
        "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdM",  # checksum invalid
        "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdL",  # valid, never issued
        "whsec_abcdefghijklmnopqrstuvwxyz0123451nc0VA",  # valid, never issued
        "ghp_notours",
    ],
)
def test_false_positives_change_nothing(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued], token: str
) -> None:
    issue()
    state = snapshot(engine)
    response = post_alert(client, signer, alert_body(token))
    assert response.status_code == 200
    assert response.json()[0] == {
        "token_hash": rules.identity(token),
        "token_type": "soundpiece_webhook_secret" if token.startswith("whsec_") else "soundpiece_api_key",
        "label": "false_positive",
    }
    assert snapshot(engine) == state


def unsigned_cases(signer: Signer, body: bytes) -> list[dict[str, str]]:
    good = signer.headers(body)
    other = Signer().headers(body)
    return [
        {},
        {"Github-Public-Key-Identifier": signer.key_id},
        {"Github-Public-Key-Signature": good["Github-Public-Key-Signature"]},
        {**good, "Github-Public-Key-Signature": "%%%not-base64%%%"},
        {**good, "Github-Public-Key-Signature": other["Github-Public-Key-Signature"]},
        {**good, "Github-Public-Key-Signature": signer.signature(body + b" ")},
        {**good, "Github-Public-Key-Identifier": "0" * 64},
    ]


def test_unsigned_or_wrongly_signed_requests_are_401_and_change_nothing(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    victim = issue()
    body = alert_body(victim.api_key)
    state = snapshot(engine)
    for headers in unsigned_cases(signer, body):
        response = client.post(ALERT_PATH, content=body, headers=headers)
        assert response.status_code == 401, headers
        assert "detail" in response.json()
    assert snapshot(engine) == state
    metrics = scrape(client)
    for reason in ("missing_headers", "malformed_signature", "bad_signature", "unknown_key"):
        assert f'soundpiece_signature_failures_total{{reason="{reason}"}}' in metrics


@pytest.mark.parametrize("body", [b"not json", b'{"token": "x"}', b"\xff"])
def test_signed_garbage_is_400(client: TestClient, signer: Signer, engine: Engine, body: bytes) -> None:
    state = snapshot(engine)
    response = post_alert(client, signer, body)
    assert response.status_code == 400
    assert snapshot(engine) == state


@pytest.mark.parametrize("body", [b'[{"token": 1, "type": "t"}]', b"[null]", b'[{"token":"x"}]'])
def test_signed_arrays_of_bad_entries_are_200_with_no_feedback(
    client: TestClient, signer: Signer, engine: Engine, body: bytes
) -> None:
    """Entries are judged one by one (tests/partner_endpoint/test_alert_bad_entries.py)."""
    state = snapshot(engine)
    response = post_alert(client, signer, body)
    assert response.status_code == 200 and response.json() == []
    assert snapshot(engine) == state


def test_oversize_body_is_413(
    make_client: Callable[..., TestClient], signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    client = make_client(max_body_bytes=1000)
    victim = issue()
    body = alert_body(victim.api_key, url="https://x/" + "a" * 1000)
    state = snapshot(engine)
    assert post_alert(client, signer, body).status_code == 413

    def chunks():  # no Content-Length: the limit holds for streamed bodies too
        yield body[:500]
        yield body[500:]

    response = client.post(ALERT_PATH, content=chunks(), headers=signer.headers(body))
    assert response.status_code == 413
    assert snapshot(engine) == state
    assert post_alert(client, signer, alert_body(victim.api_key)).status_code == 200


def test_key_endpoint_down_and_nothing_cached_is_503(
    client: TestClient, signer: Signer, engine: Engine, key_server: KeyServer, issue: Callable[..., Issued]
) -> None:
    victim = issue()
    key_server.status = 500
    state = snapshot(engine)
    response = post_alert(client, signer, alert_body(victim.api_key))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert snapshot(engine) == state


def test_key_endpoint_down_after_caching_still_verifies(
    client: TestClient,
    signer: Signer,
    engine: Engine,
    key_server: KeyServer,
    issue: Callable[..., Issued],
    clock,
) -> None:
    victim = issue()
    assert post_alert(client, signer, alert_body("junk")).status_code == 200
    key_server.status = 500
    clock.advance(3600)
    assert post_alert(client, signer, alert_body(victim.api_key)).status_code == 200
    assert key_status(engine, victim.key_id) == "revoked"
    unknown = {**signer.headers(b"[]"), "Github-Public-Key-Identifier": "f" * 64}
    assert client.post(ALERT_PATH, content=b"[]", headers=unknown).status_code == 503  # maybe a new key


def test_thousand_token_batch_is_answered_entry_by_entry(
    client: TestClient, signer: Signer, engine: Engine, issue: Callable[..., Issued]
) -> None:
    """One answer per entry, in order. How fast is bench/endpoint_load.py's ``batch_1000_tokens_s``."""
    issued = [issue(label=f"k{i}") for i in range(10)]
    tokens = [k.api_key for k in issued] + [rules.API_KEY.mint() for _ in range(890)] + ["junk"] * 100
    response = post_alert(client, signer, alert_body(*tokens))
    assert response.status_code == 200
    assert [(e["token_hash"], e["label"]) for e in response.json()] == [
        (rules.identity(t), "true_positive" if i < 10 else "false_positive") for i, t in enumerate(tokens)
    ]
    assert sorted(r["key_id"] for r in rows(engine, mail_outbox)) == sorted(k.key_id for k in issued)


def test_concurrent_deliveries_to_replicas_revoke_and_mail_once(
    engine: Engine, database_url: str, issue: Callable[..., Issued], clock
) -> None:
    """Four replicas (engines with their own connection pools) receive the same alert at once."""
    victims = [issue(label=f"k{i}") for i in range(5)]
    reported = sightings(parse_batch(alert_body(*(v.api_key for v in victims))).alerts)
    replicas = [make_engine(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def deliver(replica: Engine) -> None:
        try:
            barrier.wait()
            LeakService(replica, clock, policy="revoke", sender="a@b.c").respond(reported)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(replica,)) for replica in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for replica in replicas:
        replica.dispose()
    assert errors == []
    assert len(rows(engine, mail_outbox)) == 5
    assert {e["action"] for e in rows(engine, leak_events)} == {"revoked"}
    assert {key_status(engine, v.key_id) for v in victims} == {"revoked"}


def test_empty_batch_and_health_and_metrics(client: TestClient, signer: Signer) -> None:
    assert post_alert(client, signer, b"[]").json() == []
    assert client.get("/healthz").json() == {"status": "ok"}
    post_alert(client, signer, alert_body("junk", "junk2"))
    metrics = scrape(client)
    assert "soundpiece_alerts_total 2.0" in metrics
    assert 'soundpiece_alert_tokens_total{label="false_positive"} 2.0' in metrics
    assert 'soundpiece_github_key_fetches_total{result="success"} 1.0' in metrics
    assert "soundpiece_github_key_cache_hits_total 1.0" in metrics
    assert "soundpiece_outbox_depth 0.0" in metrics
