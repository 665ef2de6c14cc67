"""API authentication and ``GET /v1/whoami`` on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

import rules
from partner_endpoint.settings import Settings, SettingsError
from partner_endpoint.store import api_keys as key_store
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.models import api_keys
from tests.support.api_auth import DENIED, bearer, count_statements, whoami
from tests.support.partner import Clock, Issued, TestClient, rows


def last_used(engine: Engine, key_id: int) -> Any:
    return next(r["last_used_at"] for r in rows(engine, api_keys) if r["id"] == key_id)


def test_whoami_with_a_valid_key(client: TestClient, issue: Callable[..., Issued]) -> None:
    issued = issue(label="laptop")
    response = whoami(client, issued.api_key)
    assert response.status_code == 200
    assert response.json() == {"account_id": issued.account_id, "key_id": issued.key_id, "label": "laptop"}
    lowercase_scheme = client.get("/v1/whoami", headers={"Authorization": f"bearer {issued.api_key}"})
    assert lowercase_scheme.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token spk_x",
        "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdL",
    ],
)
def test_missing_or_malformed_header_is_401(client: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert response.json() == DENIED
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdM",  # checksum invalid
        "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZd",  # too short
        "whsec_abcdefghijklmnopqrstuvwxyz0123451nc0VA",  # a signing secret is not an API key
        "spk_<your-key>",
    ],
)
def test_invalid_tokens_are_refused_without_a_database_query(
    client: TestClient, engine: Engine, token: str
) -> None:
    with count_statements(engine) as statements:
        response = whoami(client, token)
    assert response.status_code == 401
    assert response.json() == DENIED
    assert statements == []


def test_unknown_and_revoked_keys_are_401(
    client: TestClient, engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    assert whoami(client, rules.API_KEY.mint()).json() == DENIED
    issued = issue()
    with write_transaction(engine) as conn:
        key_store.revoke(conn, issued.key_id, clock.now())
    response = whoami(client, issued.api_key)
    assert (response.status_code, response.json()) == (401, DENIED)
    assert whoami(client, issued.signing_secret).status_code == 401


def test_ip_allowlist(make_client: Callable[..., TestClient], issue: Callable[..., Issued]) -> None:
    issued = issue(allow_ips=["10.0.0.0/8", "2001:db8::1"])
    for address, expected in [
        ("10.1.2.3", 200),
        ("10.255.0.1", 200),
        ("2001:db8::1", 200),
        ("11.0.0.1", 401),
        ("2001:db8::2", 401),
        ("127.0.0.1", 401),
    ]:
        client = make_client(client=(address, 4000))
        assert whoami(client, issued.api_key).status_code == expected, address
    open_key = issue(email="other@example.com")
    assert whoami(make_client(client=("11.0.0.1", 1)), open_key.api_key).status_code == 200


def test_trusted_proxy_header(make_client: Callable[..., TestClient], issue: Callable[..., Issued]) -> None:
    issued = issue(allow_ips=["198.51.100.7"])
    behind_proxy = make_client(client=("127.0.0.1", 1), trusted_proxy_header="X-Forwarded-For")

    key = issued.api_key
    assert whoami(behind_proxy, key, "198.51.100.7").status_code == 200
    assert (
        whoami(behind_proxy, key, "203.0.113.9, 198.51.100.7").status_code == 200
    )  # our proxy appends the peer
    assert whoami(behind_proxy, key, "198.51.100.7, 203.0.113.9").status_code == 401  # the last entry is ours
    assert whoami(behind_proxy, key, "not-an-ip").status_code == 401
    assert whoami(behind_proxy, key).status_code == 401
    # From a peer that is not a trusted proxy the header is ignored.
    direct = make_client(client=("198.51.100.8", 1), trusted_proxy_header="X-Forwarded-For")
    assert whoami(direct, key, "198.51.100.7").status_code == 401
    # Without a configured header, it is never read.
    plain = make_client(client=("127.0.0.1", 1))
    assert whoami(plain, key, "198.51.100.7").status_code == 401


def flush_last_used(client: TestClient) -> None:
    """Write the counted traffic and last uses now (the app does it in the background)."""
    client.portal.call(client.app.state.flush_traffic)


def test_last_use_is_written_in_the_background_with_its_address(
    make_client: Callable[..., TestClient], engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    """No write on the request path: five requests are counted in memory and written once, with the
    time and the client address (as the allowlist reads it: an IPv6 client is its /64)."""
    issued = issue()
    client = make_client(client=("2001:db8:7:8::99", 4000))
    with count_statements(engine) as on_the_path:
        for _ in range(5):
            assert whoami(client, issued.api_key).status_code == 200
    assert not [s for s in on_the_path if not s.lstrip().upper().startswith("SELECT")]
    assert last_used(engine, issued.key_id) is None
    with count_statements(engine) as flushed:
        flush_last_used(client)
    assert len([s for s in flushed if s.lstrip().upper().startswith("UPDATE")]) == 1
    assert last_used(engine, issued.key_id) == clock.now()
    assert rows(engine, api_keys)[0]["last_used_address"] == "2001:db8:7:8::/64"
    clock.advance(30)
    whoami(client, issued.api_key)
    flush_last_used(client)
    assert last_used(engine, issued.key_id) == clock.now()


def test_last_uses_are_written_at_shutdown(
    make_client: Callable[..., TestClient], engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    issued = issue()
    client = make_client()
    assert whoami(client, issued.api_key).status_code == 200
    client.__exit__(None, None, None)  # the lifespan ends: what was counted is written
    assert last_used(engine, issued.key_id) == clock.now()


def test_flagged_key_still_authenticates(
    client: TestClient, engine: Engine, issue: Callable[..., Issued]
) -> None:
    issued = issue()
    with write_transaction(engine) as conn:
        conn.execute(api_keys.update().where(api_keys.c.id == issued.key_id).values(status="flagged"))
    assert whoami(client, issued.api_key).status_code == 200


def test_alert_endpoint_does_not_need_an_api_key(client: TestClient) -> None:
    response = client.post("/v1/secret-scanning/github", content=b"[]", headers=bearer("spk_x"))
    assert response.status_code == 401
    assert response.json() != DENIED  # refused for its missing GitHub signature, not by API auth


def test_a_proxy_that_adds_its_own_header_line_is_not_bypassed(
    make_client: Callable[..., TestClient], issue: Callable[..., Issued]
) -> None:
    """HAProxy's ``option forwardfor`` adds a line instead of appending to the client's: the lines are
    one list, and only its right end is believed (before the fix the client's forged first line was)."""
    issued = issue(allow_ips=["198.51.100.7"])
    behind_proxy = make_client(client=("127.0.0.1", 1), trusted_proxy_header="X-Forwarded-For")

    key = issued.api_key
    assert whoami(behind_proxy, key, "198.51.100.7", "203.0.113.9").status_code == 401  # forged line first
    assert whoami(behind_proxy, key, "203.0.113.9", "198.51.100.7").status_code == 200
    assert whoami(behind_proxy, key, "10.9.9.9, 198.51.100.7", "203.0.113.9").status_code == 401
    assert whoami(behind_proxy, key, "203.0.113.9", "", "198.51.100.7,").status_code == 200  # empty elements


def test_several_trusted_proxies_that_are_not_on_loopback(
    make_client: Callable[..., TestClient], issue: Callable[..., Issued]
) -> None:
    """A load balancer (192.0.2.1) in front of an ingress proxy (192.0.2.5): both are trusted, so the
    client is the entry before them; an untrusted hop in between is where belief stops."""
    issued = issue(allow_ips=["198.51.100.0/24"])
    ingress = make_client(
        client=("192.0.2.5", 1), trusted_proxy_header="X-Forwarded-For", trusted_proxies=("192.0.2.0/28",)
    )

    key = issued.api_key
    assert whoami(ingress, key, "198.51.100.7, 192.0.2.1").status_code == 200
    assert whoami(ingress, key, "198.51.100.7").status_code == 200
    assert (
        whoami(ingress, key, "203.0.113.4, 198.51.100.7, 192.0.2.1").status_code == 200
    )  # the client's claim
    assert (
        whoami(ingress, key, "198.51.100.7, 203.0.113.4, 192.0.2.1").status_code == 401
    )  # not ours to believe
    assert whoami(ingress, key, "198.51.100.7, garbage, 192.0.2.1").status_code == 401
    # Loopback is no longer trusted with this setting: a local peer's header is ignored.
    local = make_client(
        client=("127.0.0.1", 1), trusted_proxy_header="X-Forwarded-For", trusted_proxies=("192.0.2.0/28",)
    )
    assert whoami(local, key, "198.51.100.7").status_code == 401


def test_ipv4_mapped_peers_match_ipv4_ranges(
    make_client: Callable[..., TestClient], issue: Callable[..., Issued]
) -> None:
    """A dual-stack socket reports an IPv4 peer as ``::ffff:a.b.c.d``: it is that IPv4 address."""
    issued = issue(allow_ips=["10.0.0.0/8"])
    for peer, expected in [("::ffff:10.1.2.3", 200), ("::ffff:11.1.2.3", 401), ("10.1.2.3", 200)]:
        client = make_client(client=(peer, 4000))
        assert whoami(client, issued.api_key).status_code == expected, peer
    mapped_proxy = make_client(client=("::ffff:127.0.0.1", 1), trusted_proxy_header="X-Forwarded-For")
    assert whoami(mapped_proxy, issued.api_key, "::ffff:10.0.0.9").status_code == 200


def test_authentication_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "SOUNDPIECE_KEY_CHANGE_DELAY": "0.5",
            "SOUNDPIECE_AUTH_CACHE_SIZE": "0",
            "SOUNDPIECE_AUTH_FAILURE_LIMIT": "100",
            "SOUNDPIECE_AUTH_FAILURE_WINDOW": "30",
        }
    )
    assert (settings.key_change_delay, settings.auth_cache_size) == (0.5, 0)
    assert (settings.auth_failure_limit, settings.auth_failure_window) == (100, 30.0)
    defaults = Settings.from_env({})
    assert (defaults.key_change_delay, defaults.auth_failure_limit, defaults.auth_failure_window) == (
        1.0,
        30,
        60.0,
    )
    for name, value in [
        ("KEY_CHANGE_DELAY", "0"),
        ("KEY_CHANGE_DELAY", "inf"),
        ("KEY_CHANGE_DELAY", "nan"),
        ("KEY_CHANGE_DELAY", "soon"),
        ("AUTH_CACHE_SIZE", "-1"),
        ("AUTH_CACHE_SIZE", "1e3"),
        ("AUTH_FAILURE_LIMIT", "-5"),
        ("AUTH_FAILURE_WINDOW", "0"),
        ("AUTH_FAILURE_WINDOW", "-inf"),
    ]:
        with pytest.raises(SettingsError):
            Settings.from_env({f"SOUNDPIECE_{name}": value})
