"""The Token Revocation API that self-managed GitLab instances call, through HTTP against a real ``serve``,
with tokens made and revoked by the real command line (GitLab's token_revocation_api.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from partner_endpoint.services.revocation_tokens import RevocationTokenService
from tests.support.dashboard import Browser
from tests.support.origins import REVOCABLE_TYPES, Deployment
from tests.support.partner import Clock, Issued

TYPES = "/v1/revocable_token_types"
REVOKE = "/v1/revoke_tokens"
LIMIT = 8
"""Requests one instance may make per window here (SOUNDPIECE_REVOCATION_RATE_LIMIT)."""
FAILURES = 5
"""Failed requests one client may make before 429 (SOUNDPIECE_ALERT_FAILURE_LIMIT)."""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("revocation")
    with Deployment(folder, revocation_rate_limit=str(LIMIT), alert_failure_limit=str(FAILURES)) as running:
        yield running


def new_token(deployment: Deployment, name: str = "gitlab.example.com") -> str:
    created = deployment.cli("revocation-tokens", "create", "--name", name)
    assert created["name"] == name
    return str(created["token"])


def call(
    deployment: Deployment, method: str, path: str, token: str | None, body: Any = None, **headers: str
) -> Any:
    sent = {**deployment.client(), **headers}
    if token is not None:
        sent["Authorization"] = token  # bare, as GitLab sends it
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    if content is not None:
        sent["Content-Type"] = "application/json"
    return deployment.http.request(method, f"{deployment.server.url}{path}", content=content, headers=sent)


def entry(
    token: str,
    token_type: str = REVOCABLE_TYPES[0],
    location: str = "https://gitlab.example.com/g/p/-/raw/abc/x.py",
) -> dict[str, Any]:
    return {"type": token_type, "token": token, "location": location}


def test_without_a_valid_token_nothing_is_answered(deployment: Deployment) -> None:
    key = deployment.issue()
    for presented in (None, "", "Bearer", "sprt_" + "A" * 43, f"Bearer {key.api_key}", key.api_key):
        for method, path in (("GET", TYPES), ("POST", REVOKE)):
            response = call(deployment, method, path, presented, [entry(key.api_key)])
            assert response.status_code == 401, (presented, path)
            assert response.json() == {"detail": "Invalid or missing revocation API token"}
    assert deployment.whoami(key.api_key) == 200  # an API key is not a revocation token, and was not reported
    assert deployment.sightings(key.key_id) == []


def test_an_instance_token_names_the_types_and_reports_leaks_once(deployment: Deployment) -> None:
    token = new_token(deployment)
    assert token.startswith("sprt_")
    types = call(deployment, "GET", TYPES, token)
    assert (types.status_code, types.json()) == (200, {"types": REVOCABLE_TYPES})
    assert call(deployment, "GET", TYPES, f"Bearer {token}").status_code == 200  # the usual form works too
    key, other = deployment.issue(), deployment.issue()
    batch = [entry(key.api_key), entry(other.signing_secret, REVOCABLE_TYPES[1]), entry("spk_not_ours")]
    for _ in range(2):  # GitLab retries, and a retry changes nothing
        response = call(deployment, "POST", REVOKE, token, batch)
        assert (response.status_code, response.content) == (204, b"")
        assert deployment.whoami(key.api_key) == 401 and deployment.whoami(other.api_key) == 401
        assert deployment.sightings(key.key_id) == [("gitlab-self-managed", batch[0]["location"])]
        assert len(deployment.mails(key.key_id)) == 1 and len(deployment.mails(other.key_id)) == 1
    (listed,) = [t for t in deployment.cli("revocation-tokens", "list") if t["token_suffix"] == token[-4:]]
    assert listed["last_used_at"] is not None and listed["revoked_at"] is None
    assert token not in json.dumps(deployment.cli("revocation-tokens", "list"))
    assert token not in deployment.server.log()


def test_a_revoked_token_is_refused(deployment: Deployment) -> None:
    token = new_token(deployment, "old.gitlab.example.com")
    assert call(deployment, "GET", TYPES, token).status_code == 200
    (listed,) = [t for t in deployment.cli("revocation-tokens", "list") if t["token_suffix"] == token[-4:]]
    assert deployment.cli("revocation-tokens", "revoke", str(listed["token_id"]))["changed"] is True
    key = deployment.issue()
    assert call(deployment, "POST", REVOKE, token, [entry(key.api_key)]).status_code == 401
    assert call(deployment, "GET", TYPES, token).status_code == 401
    assert deployment.whoami(key.api_key) == 200


def test_a_batch_with_unknown_and_malformed_entries_is_400_and_its_good_entries_are_processed(
    deployment: Deployment,
) -> None:
    """400 tells GitLab not to retry; the leaked key beside the bad entries is revoked all the same."""
    token = new_token(deployment)
    key = deployment.issue()
    batch = [
        entry("spk_x", "gitleaks_rule_id_aws_access_token"),  # a type we do not revoke
        "not an object",
        {"type": REVOCABLE_TYPES[0], "token": 5},
        {"type": REVOCABLE_TYPES[0]},
        entry(key.api_key),
        {**entry(key.api_key), "location": ["not", "text"]},
    ]
    response = call(deployment, "POST", REVOKE, token, batch)
    assert response.status_code == 400
    assert [r["index"] for r in response.json()["rejected"]] == [0, 1, 2, 3, 5]
    assert response.json()["rejected"][0]["reason"] == "type not supported"
    assert deployment.whoami(key.api_key) == 401
    assert len(deployment.mails(key.key_id)) == 1
    for body in (b"", b"{}", b'{"type": "x"}', b"[" * 10_000, b"\xff\xfe"):
        assert call(deployment, "POST", REVOKE, token, body).status_code == 400, body
    assert call(deployment, "POST", REVOKE, token, []).status_code == 204


def test_wrong_methods_are_405(deployment: Deployment) -> None:
    token = new_token(deployment)
    for method, path, allowed in (("POST", TYPES, "GET"), ("GET", REVOKE, "POST"), ("PUT", REVOKE, "POST")):
        response = call(deployment, method, path, token)
        assert response.status_code == 405 and response.headers["allow"] == allowed


def test_a_flood_is_429(deployment: Deployment) -> None:
    """From one instance past its budget (every process shares it); from a client that keeps failing."""
    token = new_token(deployment, "busy.gitlab.example.com")
    answers = [
        call(deployment, "GET", TYPES, token, **{"X-Forwarded-For": "203.0.113.7"}) for _ in range(LIMIT + 3)
    ]
    assert [a.status_code for a in answers] == [200] * LIMIT + [429] * 3
    assert int(answers[-1].headers["retry-after"]) > 0
    assert (
        call(deployment, "GET", TYPES, new_token(deployment, "quiet.gitlab.example.com")).status_code == 200
    )
    stranger = {"X-Forwarded-For": "203.0.113.66"}
    refused = [
        call(deployment, "POST", REVOKE, "sprt_guess", [], **stranger).status_code
        for _ in range(FAILURES + 2)
    ]
    assert refused == [401] * FAILURES + [429] * 2
    assert call(deployment, "POST", REVOKE, "sprt_guess", [], **stranger).headers["retry-after"]


def test_an_instance_budget_longer_than_an_hour_is_not_reset_by_sign_in_requests(
    open_browser: Callable[..., Browser], issue: Callable[..., Issued], engine: Engine, clock: Clock
) -> None:
    """Asking for a sign-in link (anyone may) prunes the sign-in budgets, whose window is an hour: it
    must not forget an instance's revocation budget, whose window may be up to a day."""
    browser = open_browser(revocation_api=True, revocation_rate_limit=2, revocation_rate_window=86_400.0)
    issue(email="owner@example.com")
    token = RevocationTokenService(engine, clock, limit=2, window=86_400).create("gitlab.example.com").token
    auth = {"Authorization": token}
    assert [browser.client.get(TYPES, headers=auth).status_code for _ in range(3)] == [200, 200, 429]
    clock.advance(2 * 3600)
    assert browser.request_link("owner@example.com").status_code == 303
    assert browser.client.get(TYPES, headers=auth).status_code == 429
