"""The key cache: fetch on demand, refetch on unknown ids at most once a minute, keep keys on failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from partner_endpoint.alerts.signatures import KeysUnavailable, UnknownKeyIdentifier
from partner_endpoint.alerts.signing_keys import SigningKeys
from partner_endpoint.ops.metrics import Metrics
from tests.support.github import KeyServer, Signer
from tests.support.partner import Clock

T = TypeVar("T")


def run(make: Callable[[SigningKeys], Awaitable[T]], url: str, clock: Clock, token: str | None = None) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(timeout=5) as client:
            cache = SigningKeys(client, url, Metrics(), token=token, clock=clock)
            return await make(cache)

    return asyncio.run(main())


def test_fetches_once_then_serves_from_cache(key_server: KeyServer, signer: Signer, clock: Clock) -> None:
    async def scenario(cache: SigningKeys) -> None:
        for _ in range(5):
            await cache.get(signer.key_id)

    run(scenario, key_server.url, clock)
    assert key_server.requests == 1
    assert key_server.authorizations == [None]


def test_sends_the_optional_github_token(key_server: KeyServer, signer: Signer, clock: Clock) -> None:
    async def scenario(cache: SigningKeys) -> None:
        await cache.get(signer.key_id)

    run(scenario, key_server.url, clock, token="ghp_example")
    assert key_server.authorizations == ["Bearer ghp_example"]


def test_unknown_identifiers_refetch_at_most_once_a_minute(
    key_server: KeyServer, signer: Signer, clock: Clock
) -> None:
    async def scenario(cache: SigningKeys) -> None:
        await cache.get(signer.key_id)
        for _ in range(20):  # an attacker sending made-up identifiers
            with pytest.raises(UnknownKeyIdentifier):
                await cache.get("made-up")
        assert key_server.requests == 1  # the first fetch was under a second ago
        clock.advance(61)
        with pytest.raises(UnknownKeyIdentifier):
            await cache.get("made-up")
        assert key_server.requests == 2
        with pytest.raises(UnknownKeyIdentifier):
            await cache.get("other")
        assert key_server.requests == 2

    run(scenario, key_server.url, clock)


def test_rotated_key_is_found_by_a_refetch(key_server: KeyServer, signer: Signer, clock: Clock) -> None:
    new = Signer()

    async def scenario(cache: SigningKeys) -> None:
        await cache.get(signer.key_id)
        key_server.document = {"public_keys": new.document["public_keys"]}
        clock.advance(60)
        await cache.get(new.key_id)
        await cache.get(signer.key_id)  # no longer listed, still trusted for retried deliveries

    run(scenario, key_server.url, clock)
    assert key_server.requests == 2


def test_failed_fetch_keeps_the_cache(key_server: KeyServer, signer: Signer, clock: Clock) -> None:
    async def scenario(cache: SigningKeys) -> None:
        await cache.get(signer.key_id)
        key_server.status = 500
        clock.advance(120)
        with pytest.raises(KeysUnavailable):  # perhaps a new key: GitHub should retry
            await cache.get("made-up")
        assert key_server.requests == 2
        assert await cache.get(signer.key_id) is not None
        key_server.status = 200
        clock.advance(60)
        with pytest.raises(UnknownKeyIdentifier):  # the document is readable again and lacks it
            await cache.get("made-up")

    run(scenario, key_server.url, clock)


@pytest.mark.parametrize("status", [500, 404, 200])
def test_nothing_cached_and_fetch_fails_is_unavailable(
    key_server: KeyServer, signer: Signer, clock: Clock, status: int
) -> None:
    key_server.status = status
    if status == 200:
        key_server.document = {"unexpected": True}

    async def scenario(cache: SigningKeys) -> None:
        with pytest.raises(KeysUnavailable):
            await cache.get(signer.key_id)
        with pytest.raises(KeysUnavailable):  # no second fetch within the interval
            await cache.get(signer.key_id)
        assert key_server.requests == 1
        key_server.status = 200
        key_server.document = signer.document
        clock.advance(60)
        await cache.get(signer.key_id)

    run(scenario, key_server.url, clock)


def test_unreachable_key_server_is_unavailable(signer: Signer, clock: Clock) -> None:
    async def scenario(cache: SigningKeys) -> None:
        with pytest.raises(KeysUnavailable):
            await cache.get(signer.key_id)

    run(scenario, "http://127.0.0.1:9/unreachable", clock)


def test_concurrent_unknown_ids_cause_one_fetch(key_server: KeyServer, signer: Signer, clock: Clock) -> None:
    async def scenario(cache: SigningKeys) -> None:
        results = await asyncio.gather(*(cache.get(signer.key_id) for _ in range(10)))
        assert len({id(r) for r in results}) == 1

    run(scenario, key_server.url, clock)
    assert key_server.requests == 1
