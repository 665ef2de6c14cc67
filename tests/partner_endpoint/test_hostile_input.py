"""Hostile input never causes a 5xx or a state change."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.support.api_auth import DENIED
from tests.support.github import ALERT_PATH, Signer
from tests.support.invalid_text import invalid_text
from tests.support.partner import Issued, TestClient, snapshot
from tests.support.services import ON_SQLITE

HOSTILE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | invalid_text(20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
alert_like = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "token": st.text(max_size=60) | invalid_text() | st.integers(),
            "type": st.sampled_from(["soundpiece_api_key", "soundpiece_webhook_secret"]) | json_values,
            "url": st.text(max_size=40) | invalid_text() | json_values,
            "source": st.text(max_size=20) | invalid_text(20) | json_values,
        },
    ),
    max_size=5,
)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """Many failures from one client, never a 429: the failure limits have tests of their own
    (test_alert_requests.py, test_auth_rate_limit.py)."""
    return make_client(alert_failure_limit=0, auth_failure_limit=0)


@pytest.fixture
def victim(issue: Callable[..., Issued]) -> Issued:
    return issue()


@ON_SQLITE
@HOSTILE
@given(
    body=st.binary(max_size=300),
    key_id=st.none() | header_text,
    signature=st.none() | header_text | st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()),
)
def test_unsigned_noise_is_4xx_and_changes_nothing(
    client: TestClient, engine: Engine, signer: Signer, victim: Issued, body: bytes, key_id, signature
) -> None:
    before = snapshot(engine)
    headers = {}
    if key_id is not None:
        headers["Github-Public-Key-Identifier"] = key_id
    if signature is not None:
        headers["Github-Public-Key-Signature"] = signature
    response = client.post(ALERT_PATH, content=body, headers=headers)
    assert response.status_code in (400, 401, 413)
    assert snapshot(engine) == before


@ON_SQLITE
@HOSTILE
@given(payload=st.one_of(json_values, alert_like), raw=st.none() | st.binary(max_size=200))
def test_signed_nonsense_is_200_or_400_and_changes_nothing(
    client: TestClient, engine: Engine, signer: Signer, victim: Issued, payload, raw
) -> None:
    before = snapshot(engine)
    body = raw if raw is not None else json.dumps(payload).encode()
    response = client.post(ALERT_PATH, content=body, headers=signer.headers(body))
    assert response.status_code in (200, 400)
    assert snapshot(engine) == before


@ON_SQLITE
@HOSTILE
@given(authorization=header_text)
def test_random_authorization_headers_never_5xx(client: TestClient, authorization: str) -> None:
    response = client.get("/v1/whoami", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json() == DENIED


ROUTES = ["/healthz", "/metrics", "/v1", "/v1/whoami", ALERT_PATH, "/dashboard", "/dashboard/sign-in"]
ROUTES += ["/dashboard/keys", "/dashboard/keys/1", "/dashboard/static/dashboard.css", "/"]


@ON_SQLITE
@HOSTILE
@given(
    route=st.sampled_from(ROUTES),
    end=st.sampled_from(["", "/", "//", "/x", "/x/"]),
    method=st.sampled_from(["GET", "HEAD", "POST"]),
    host=st.sampled_from(["evil.example", "evil.example:8443", "[::1]:1", "a@evil.example"]) | header_text,
    authorized=st.booleans(),
)
@example(route="/healthz", end="/", method="GET", host="evil.example", authorized=False)
@example(route="/v1/whoami", end="/", method="GET", host="evil.example", authorized=True)
def test_no_redirect_takes_its_host_from_the_request(
    client: TestClient,
    issue: Callable[..., Issued],
    route: str,
    end: str,
    method: str,
    host: str,
    authorized: bool,
) -> None:
    """A Location built from the Host header would send users (and caches) to whoever sent it."""
    headers = {"Host": host}
    if authorized:  # past the API's authentication, to its own router
        headers["Authorization"] = f"Bearer {issue(email='api@example.com').api_key}"
    response = client.request(method, route + end, headers=headers, follow_redirects=False)
    location = response.headers.get("location")
    assert location is None or (location.startswith("/") and not location.startswith("//")), (
        response.status_code,
        location,
    )
