"""One GitHub key document and one refetch limit for every process on the database, not one per process."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine

from partner_endpoint.app import create_app
from partner_endpoint.settings import Settings
from partner_endpoint.store.db import make_engine
from partner_endpoint.store.key_documents import SharedKeyDocument
from tests.support.github import ALERT_PATH, KeyServer, Signer, post_alert
from tests.support.partner import Clock, TestClient, start_client


@pytest.fixture
def replicas(settings: Settings, engine: object, clock: Clock) -> Iterator[list[TestClient]]:
    """Two instances of the service, each with its own engine (connection pool) on one database."""
    clients = []
    for _ in range(2):
        app = create_app(
            settings,
            engine=make_engine(settings.database_url),
            clock=clock,
        )
        client = start_client(app)
        client.__enter__()
        clients.append(client)
    yield clients
    for client in clients:
        client.__exit__(None, None, None)


def unknown(client: TestClient, signer: Signer) -> int:
    headers = {**signer.headers(b"[]"), "Github-Public-Key-Identifier": "e" * 64}
    return client.post(ALERT_PATH, content=b"[]", headers=headers).status_code


def test_replicas_share_the_document_and_the_refetch_limit(
    replicas: list[TestClient], signer: Signer, key_server: KeyServer, clock: Clock
) -> None:
    """Before: each process fetched on its own, so N workers made N fetches a minute."""
    first, second = replicas
    assert post_alert(first, signer, b"[]").status_code == 200
    assert key_server.requests == 1
    assert post_alert(second, signer, b"[]").status_code == 200  # the key, from the shared document
    assert [unknown(first, signer), unknown(second, signer)] == [401, 401]
    assert key_server.requests == 1  # fetched under a minute ago, by either of them
    clock.advance(61)
    assert [unknown(second, signer), unknown(first, signer), unknown(second, signer)] == [401] * 3
    assert key_server.requests == 2  # one refetch a minute for both


def test_a_key_rotated_in_is_found_by_the_replica_that_did_not_fetch(
    replicas: list[TestClient], signer: Signer, key_server: KeyServer, clock: Clock
) -> None:
    first, second = replicas
    assert post_alert(first, signer, b"[]").status_code == 200
    assert post_alert(second, signer, b"[]").status_code == 200
    rotated = Signer()
    key_server.document = {"public_keys": signer.document["public_keys"] + rotated.document["public_keys"]}
    clock.advance(61)
    assert post_alert(first, rotated, b"[]").status_code == 200  # first refetches
    assert post_alert(second, rotated, b"[]").status_code == 200  # second reads what first fetched
    assert key_server.requests == 2


def test_a_failed_fetch_is_shared_too(
    replicas: list[TestClient], signer: Signer, key_server: KeyServer, clock: Clock
) -> None:
    first, second = replicas
    key_server.status = 500
    assert post_alert(first, signer, b"[]").status_code == 503
    assert post_alert(second, signer, b"[]").status_code == 503  # no second fetch within the minute
    assert key_server.requests == 1
    key_server.status = 200
    clock.advance(61)
    assert post_alert(second, signer, b"[]").status_code == 200
    assert post_alert(first, signer, b"[]").status_code == 200
    assert key_server.requests == 2


def test_replicas_asked_at_once_make_one_fetch_and_both_verify(
    settings: Settings, engine: object, signer: Signer, key_server: KeyServer, clock: Clock
) -> None:
    """The process that loses the claim waits for the other's fetch instead of answering 503."""
    apps = [create_app(settings, engine=make_engine(settings.database_url), clock=clock) for _ in range(4)]

    async def scenario() -> list[int]:
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://partner")
            for app in apps
        ]
        body = b"[]"
        answers = await asyncio.gather(
            *(client.post(ALERT_PATH, content=body, headers=signer.headers(body)) for client in clients)
        )
        for client in clients:
            await client.aclose()
        return [answer.status_code for answer in answers]

    assert asyncio.run(scenario()) == [200] * 4
    assert key_server.requests == 1


def test_a_fetch_claimed_by_a_process_that_died_is_taken_over(
    settings: Settings, engine: Engine, signer: Signer, key_server: KeyServer, clock: Clock
) -> None:
    """Found by the kill -9 test: a process killed while fetching left its claim unfinished, and every
    other process answered 503 for the rest of the minute. A claim unfinished past the fetch timeout
    (a live process finishes within it) is now taken over."""
    SharedKeyDocument(engine).claim(clock.now(), timedelta(seconds=60), timedelta(seconds=2))  # then dies
    app = create_app(
        dataclasses.replace(settings, key_fetch_timeout=1.0),
        engine=engine,
        clock=clock,
    )
    with start_client(app) as client:
        assert post_alert(client, signer, b"[]").status_code == 503  # waited for it: it may be alive
        assert key_server.requests == 0
        clock.advance(2.5)  # past the fetch timeout and a second
        assert post_alert(client, signer, b"[]").status_code == 200
    assert key_server.requests == 1
