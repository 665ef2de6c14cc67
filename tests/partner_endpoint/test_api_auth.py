"""API authentication and ``GET /v1/whoami`` on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

import rules
from partner_endpoint.store import keys
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.models import api_keys
from tests.support.partner import Clock, Issued, TestClient, count_statements, rows

DENIED = {"detail": "Missing or invalid Authorization header"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def last_used(engine: Engine, key_id: int) -> Any:
    return next(r["last_used_at"] for r in rows(engine, api_keys) if r["id"] == key_id)


def test_whoami_with_a_valid_key(client: TestClient, issue: Callable[..., Issued]) -> None:
    issued = issue(label="laptop")
    response = client.get("/v1/whoami", headers=bearer(issued.api_key))
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
        response = client.get("/v1/whoami", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == DENIED
    assert statements == []


def test_unknown_and_revoked_keys_are_401(
    client: TestClient, engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    assert client.get("/v1/whoami", headers=bearer(rules.API_KEY.mint())).json() == DENIED
    issued = issue()
    with write_transaction(engine) as conn:
        keys.revoke_key(conn, issued.key_id, clock.wall())
    response = client.get("/v1/whoami", headers=bearer(issued.api_key))
    assert (response.status_code, response.json()) == (401, DENIED)
    assert client.get("/v1/whoami", headers=bearer(issued.signing_secret)).status_code == 401


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
        assert client.get("/v1/whoami", headers=bearer(issued.api_key)).status_code == expected, address
    open_key = issue(email="other@example.com")
    assert (
        make_client(client=("11.0.0.1", 1)).get("/v1/whoami", headers=bearer(open_key.api_key)).status_code
        == 200
    )


def test_trusted_proxy_header(make_client: Callable[..., TestClient], issue: Callable[..., Issued]) -> None:
    issued = issue(allow_ips=["198.51.100.7"])
    behind_proxy = make_client(client=("127.0.0.1", 1), trusted_proxy_header="X-Forwarded-For")

    def whoami(client: TestClient, forwarded: str | None) -> int:
        headers = bearer(issued.api_key) | ({"X-Forwarded-For": forwarded} if forwarded else {})
        return client.get("/v1/whoami", headers=headers).status_code

    assert whoami(behind_proxy, "198.51.100.7") == 200
    assert whoami(behind_proxy, "203.0.113.9, 198.51.100.7") == 200  # our proxy appends the real peer
    assert whoami(behind_proxy, "198.51.100.7, 203.0.113.9") == 401  # a client cannot spoof the last entry
    assert whoami(behind_proxy, "not-an-ip") == 401
    assert whoami(behind_proxy, None) == 401
    # From a peer that is not a trusted proxy the header is ignored.
    direct = make_client(client=("198.51.100.8", 1), trusted_proxy_header="X-Forwarded-For")
    assert whoami(direct, "198.51.100.7") == 401
    # Without a configured header, it is never read.
    plain = make_client(client=("127.0.0.1", 1))
    assert whoami(plain, "198.51.100.7") == 401


def test_last_used_is_updated_but_throttled(
    client: TestClient, engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    issued = issue()
    assert last_used(engine, issued.key_id) is None
    assert client.get("/v1/whoami", headers=bearer(issued.api_key)).status_code == 200
    first = last_used(engine, issued.key_id)
    assert first == clock.wall()
    clock.advance(30)
    with count_statements(engine) as statements:
        for _ in range(5):
            assert client.get("/v1/whoami", headers=bearer(issued.api_key)).status_code == 200
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert last_used(engine, issued.key_id) == first
    clock.advance(31)
    client.get("/v1/whoami", headers=bearer(issued.api_key))
    assert last_used(engine, issued.key_id) == clock.wall()


def test_flagged_key_still_authenticates(
    client: TestClient, engine: Engine, issue: Callable[..., Issued]
) -> None:
    issued = issue()
    with write_transaction(engine) as conn:
        conn.execute(api_keys.update().where(api_keys.c.id == issued.key_id).values(status="flagged"))
    assert client.get("/v1/whoami", headers=bearer(issued.api_key)).status_code == 200


def test_alert_endpoint_does_not_need_an_api_key(client: TestClient) -> None:
    response = client.post("/v1/secret-scanning/github", content=b"[]", headers=bearer("spk_x"))
    assert response.status_code == 401
    assert response.json() != DENIED  # refused for its missing GitHub signature, not by API auth
