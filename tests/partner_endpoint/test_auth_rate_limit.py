"""Failed API authentications per client: 429 past the budget, counted in /metrics, bounded in memory."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

import rules
from partner_endpoint.web.clients import bucket_of as client_key
from partner_endpoint.web.failures import FailureBudget
from tests.support.api_auth import count_statements, whoami
from tests.support.partner import Clock, Issued, TestClient, scrape
from tests.support.services import ON_SQLITE

LIMIT, WINDOW = 5, 10.0
"""One failure earned back every 2 s."""


def metric(client: TestClient, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", scrape(client), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def limited(make_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    def make(peer: str = "198.51.100.7", **overrides: object) -> TestClient:
        options = {"auth_failure_limit": LIMIT, "auth_failure_window": WINDOW, "key_change_delay": 3600.0}
        return make_client(client=(peer, 4000), **(options | overrides))  # read the log at start-up

    return make


@ON_SQLITE  # the budget never reaches the database: one backend is enough
def test_a_client_that_keeps_failing_gets_429_then_earns_attempts_back(
    limited: Callable[..., TestClient], clock: Clock
) -> None:
    client = limited()
    for _ in range(LIMIT):
        assert whoami(client, rules.API_KEY.mint()).status_code == 401
    refused = whoami(client, rules.API_KEY.mint())
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
    assert whoami(client, "garbage").status_code == 429  # every kind of failure counts
    clock.advance(2)
    assert whoami(client, "garbage").status_code == 401  # one earned back...
    assert whoami(client, "garbage").status_code == 429  # ...and spent; asking while refused cost nothing
    clock.advance(WINDOW)
    assert [whoami(client, "garbage").status_code for _ in range(LIMIT + 1)] == [401] * LIMIT + [429]
    # Failures by reason, whether answered 401 or 429; the 429 for a key that was not even looked up
    # has no reason and counts only as rate limited.
    assert metric(client, 'soundpiece_api_auth_failures_total{reason="malformed"}') == LIMIT + 4
    assert metric(client, 'soundpiece_api_auth_failures_total{reason="unknown"}') == LIMIT
    assert metric(client, "soundpiece_api_auth_rate_limited_total") == 4


@ON_SQLITE  # the budget never reaches the database: one backend is enough
def test_a_refused_client_cannot_make_the_database_look_keys_up(
    limited: Callable[..., TestClient], engine: Engine, issue: Callable[..., Issued]
) -> None:
    """Its cached keys still work (one bad client behind a shared address does not lock the others
    out), but a key not in the cache is not looked up for it until it has budget again."""
    cached, uncached = issue(), issue(email="second@example.com")
    client = limited()
    assert whoami(client, cached.api_key).status_code == 200
    for _ in range(LIMIT):
        whoami(client, rules.API_KEY.mint())
    with count_statements(engine) as statements:
        assert whoami(client, rules.API_KEY.mint()).status_code == 429
        assert whoami(client, uncached.api_key).status_code == 429
        assert whoami(client, cached.api_key).status_code == 200
    assert [s for s in statements if "api_keys" in s] == []


@ON_SQLITE  # the budget never reaches the database: one backend is enough
def test_budgets_are_per_client_and_ipv6_per_64(limited: Callable[..., TestClient]) -> None:
    app_client = limited("2001:db8:1:2::10")
    for _ in range(LIMIT):
        whoami(app_client, "garbage")
    assert whoami(app_client, "garbage").status_code == 429
    same_64 = limited("2001:db8:1:2::99")
    other_64 = limited("2001:db8:1:3::10")
    # Separate apps have separate budgets (as processes do); inside one app, the /64 is the client:
    assert client_key(ipaddress.ip_address("2001:db8:1:2::99")) == client_key(
        ipaddress.ip_address("2001:db8:1:2::10")
    )
    assert client_key(ipaddress.ip_address("2001:db8:1:3::10")) != client_key(
        ipaddress.ip_address("2001:db8:1:2::10")
    )
    assert client_key(ipaddress.ip_address("::ffff:192.0.2.1")) == client_key(
        ipaddress.ip_address("192.0.2.1")
    )
    assert whoami(same_64, "garbage").status_code == whoami(other_64, "garbage").status_code == 401


@ON_SQLITE  # the budget never reaches the database: one backend is enough
def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(limited: Callable[..., TestClient]) -> None:
    proxy = limited("127.0.0.1", trusted_proxy_header="X-Forwarded-For")
    for _ in range(LIMIT):
        whoami(proxy, "garbage", "203.0.113.9")
    assert whoami(proxy, "garbage", "203.0.113.9").status_code == 429
    assert whoami(proxy, "garbage", "203.0.113.10").status_code == 401
    assert whoami(proxy, "garbage").status_code == 401  # the proxy's own budget is untouched


@ON_SQLITE  # the budget never reaches the database: one backend is enough
def test_the_limit_can_be_switched_off(limited: Callable[..., TestClient]) -> None:
    client = limited(auth_failure_limit=0)
    assert {whoami(client, "garbage").status_code for _ in range(3 * LIMIT)} == {401}


# --- the budget alone, against properties rather than its formula ---------------------------------


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 20),
    window=st.floats(1.0, 100.0),
    steps=st.lists(st.tuples(st.floats(0.0, 30.0), st.sampled_from(["a", "b"])), max_size=80),
)
def test_no_client_fails_more_than_its_limit_plus_what_time_earns(
    limit: int, window: float, steps: list[tuple[float, str]]
) -> None:
    clock = Clock()
    started = clock.monotonic()
    budget = FailureBudget(limit, window, clock)
    spent = {"a": 0, "b": 0}
    for wait, client in steps:
        clock.advance(wait)
        retry_after = budget.spend(client)
        if retry_after is None:
            spent[client] += 1
        else:
            assert retry_after >= 1
        for name, count in spent.items():
            earned = (clock.monotonic() - started) * limit / window
            assert count <= limit + earned + 1e-9, name
    # After a whole quiet window, a client may fail `limit` times in a row again.
    clock.advance(window)
    assert [budget.spend("a") for _ in range(limit)] == [None] * limit
    assert budget.spend("a") is not None


def test_the_number_of_budgets_is_bounded() -> None:
    budget = FailureBudget(1, 60.0, Clock(), max_clients=3)
    for client in "abcd":
        assert budget.spend(client) is None
    assert budget.spend("a") is None  # "a" was the oldest, and was forgotten
    assert budget.spend("d") is not None
