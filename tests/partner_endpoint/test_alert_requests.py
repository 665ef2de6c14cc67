"""What an unsigned or invalid alert request may cost: no body read for an unknown key identifier,
a body limit sized for real batches, large bodies verified off the event loop, failures limited per client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

import rules
from partner_endpoint.alerts import receiver as endpoint
from partner_endpoint.app import create_app
from partner_endpoint.domain.origins import ORIGINS
from partner_endpoint.settings import DEFAULT_MAX_BODY_BYTES, Settings
from tests.support.github import ALERT_PATH, KeyServer, Signer, post_alert
from tests.support.partner import Clock, TestClient, scrape


async def post_counting_reads(app: Any, headers: dict[str, str], body: bytes) -> tuple[int, int]:
    """One request straight through ASGI; returns its status and how often the app asked for the body."""
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": ALERT_PATH,
        "raw_path": ALERT_PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return status, reads


def test_an_unknown_key_identifier_is_refused_before_the_body_is_read(
    settings: Settings, engine: Engine, signer: Signer, key_server: KeyServer, clock: Clock
) -> None:
    """Before: up to 8 MiB of body was read, then the identifier was looked up (40 connections: 194 MiB)."""
    app = create_app(settings, engine=engine, clock=clock)
    body = b"[" + b" " * 500_000 + b"]"
    unknown = {**signer.headers(body), "Github-Public-Key-Identifier": "f" * 64}

    async def scenario() -> list[tuple[int, int]]:
        results = [await post_counting_reads(app, signer.headers(b"[]"), b"[]")]  # fetches the document
        results += [await post_counting_reads(app, unknown, body) for _ in range(3)]
        return results

    known, *refused = asyncio.run(scenario())
    assert known == (200, 1)
    assert refused == [(401, 0)] * 3
    assert key_server.requests == 1  # the document is fresh: no refetch either


def test_the_default_limit_takes_a_ten_thousand_entry_batch_and_refuses_past_two_mebibytes(
    make_client: Callable[..., TestClient], signer: Signer
) -> None:
    """Before: the default was 8 MiB, so 2 MiB + 1 byte was read and parsed."""
    client = make_client(max_body_bytes=Settings().max_body_bytes)
    assert DEFAULT_MAX_BODY_BYTES == 2 * 1024 * 1024
    entries = [
        {
            "token": rules.API_KEY.mint(),
            "type": "soundpiece_api_key",
            "url": f"https://github.com/octo-org/app/blob/4f6e1a2/config/env.{i}.yml",
            "source": "content",
        }
        for i in range(10_000)
    ]
    batch = json.dumps(entries, separators=(",", ":")).encode()
    assert len(batch) < DEFAULT_MAX_BODY_BYTES
    response = post_alert(client, signer, batch)
    assert response.status_code == 200 and len(response.json()) == 10_000
    padded = b"[" + b" " * (DEFAULT_MAX_BODY_BYTES - 1) + b"]"
    assert post_alert(client, signer, padded).status_code == 413


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_large_bodies_are_verified_off_the_event_loop(
    make_client: Callable[..., TestClient], signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: every body was hashed and verified on the event loop, stalling every other request."""
    calls: list[tuple[int, bool]] = []
    real = endpoint.verify_signature

    def recording(public_key: Any, signature: bytes, body: bytes) -> None:
        calls.append((len(body), on_event_loop()))
        real(public_key, signature, body)

    monkeypatch.setattr(endpoint, "verify_signature", recording)
    client = make_client()
    large = b"[" + b" " * endpoint.VERIFY_OFF_LOOP_BYTES + b"]"
    assert post_alert(client, signer, b"[]").status_code == 200
    assert post_alert(client, signer, large).status_code == 200
    assert calls == [(2, True), (len(large), False)]


def test_a_client_that_keeps_failing_is_limited_per_address_and_counted(
    make_client: Callable[..., TestClient], signer: Signer, clock: Clock
) -> None:
    """Before: no limit; every unsigned request was read and checked."""
    client = make_client(
        trusted_proxy_header="X-Forwarded-For", alert_failure_limit=5, alert_failure_window=10.0
    )  # the peer, 127.0.0.1, is a trusted proxy: clients are told apart by X-Forwarded-For

    def unsigned(address: str) -> Any:
        return client.post(ALERT_PATH, content=b"[]", headers={"X-Forwarded-For": address})

    def signed(address: str) -> Any:
        return client.post(
            ALERT_PATH, content=b"[]", headers={**signer.headers(b"[]"), "X-Forwarded-For": address}
        )

    assert [unsigned("203.0.113.1").status_code for _ in range(5)] == [401] * 5
    limited = unsigned("203.0.113.1")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert signed("203.0.113.1").status_code == 429  # refused before any work, signed or not
    assert signed("203.0.113.2").status_code == 200
    assert unsigned("203.0.113.2").status_code == 401
    clock.advance(2)  # one failure's worth of budget back
    assert unsigned("203.0.113.1").status_code == 401
    assert unsigned("203.0.113.1").status_code == 429
    metrics = scrape(client)
    assert "soundpiece_alert_requests_limited_total 3.0" in metrics
    assert 'soundpiece_signature_failures_total{reason="missing_headers"} 7.0' in metrics


def test_the_limit_can_be_turned_off(make_client: Callable[..., TestClient]) -> None:
    client = make_client(alert_failure_limit=0)
    assert {client.post(ALERT_PATH, content=b"[]").status_code for _ in range(50)} == {401}


def test_a_wrong_method_on_any_report_route_is_405_and_spends_no_budget(
    make_client: Callable[..., TestClient],
) -> None:
    """Before: a route that took only POST let a GET fall through to the API's mount: 401, Bearer."""
    every_origin = {origin.switch: True for origin in ORIGINS}
    every_origin["gitlab_keys_url"] = "http://127.0.0.1:9/keys"  # the only one without a default; never asked
    client = make_client(alert_failure_limit=1, **every_origin)
    for origin in ORIGINS:
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            response = client.request(method, origin.route)
            assert response.status_code == 405, (method, origin.route)
            assert response.headers["allow"] == "POST"
            assert "www-authenticate" not in response.headers
    assert client.post(ALERT_PATH, content=b"[]").status_code == 401  # the budget is whole
