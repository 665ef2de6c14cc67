"""Origins as data, in-process on SQLite and PostgreSQL: switched on by configuration, each with its own
key document, refetch limit (shared across processes), metrics and log label; hostile reports."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from partner_endpoint.app import create_app
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.domain.origins import ORIGINS
from partner_endpoint.services.revocation_tokens import RevocationTokenService
from partner_endpoint.settings import Settings, SettingsError, declared
from partner_endpoint.store.db import make_engine
from tests.support.github import KeyServer, Signer
from tests.support.origins import DEPS_DEV, GITLAB, PLATFORMS, Platform
from tests.support.partner import Clock, Issued, TestClient, scrape, snapshot, start_client


def post(
    client: TestClient, platform: Platform, signer: Signer, body: bytes, key_id: str | None = None
) -> int:
    response = client.post(
        platform.route, content=body, headers=platform.headers(signer, body, key_id=key_id)
    )
    return int(response.status_code)


# --- configuration ------------------------------------------------------------------------------------


def test_every_origin_names_declared_settings_and_only_github_is_on_by_default() -> None:
    names = {setting.name for setting in declared()}
    for origin in ORIGINS:
        assert {origin.switch, origin.keys_url} <= names and origin.keys_token in names | {None}
    defaults = Settings(data_dir=None)
    assert [origin.name for origin in ORIGINS if getattr(defaults, origin.switch)] == ["github"]
    assert defaults.revocation_api is False


def test_gitlab_on_needs_the_key_document_gitlab_names() -> None:
    with pytest.raises(SettingsError, match="SOUNDPIECE_GITLAB_ALERTS is on: set SOUNDPIECE_GITLAB_KEYS_URL"):
        Settings.from_env({"SOUNDPIECE_GITLAB_ALERTS": "on"})
    assert Settings.from_env({"SOUNDPIECE_GITLAB_ALERTS": "on", "SOUNDPIECE_TEST_SIGNER": "on"}).gitlab_alerts
    with pytest.raises(SettingsError, match="SOUNDPIECE_GITLAB_KEYS_URL"):
        Settings.from_env({"SOUNDPIECE_GITLAB_KEYS_URL": "ftp://example.com/keys"})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_origin_that_is_off_has_no_route(
    make_client: Callable[..., TestClient],
    signers: dict[str, Signer],
    issue: Callable[..., Issued],
    engine: Engine,
) -> None:
    client = make_client(github_alerts=False)
    victim = issue()
    state = snapshot(engine)
    for platform in PLATFORMS:
        body = platform.body(victim.api_key)
        response = client.post(
            platform.route, content=body, headers=platform.headers(signers[platform.name], body)
        )
        # The API's mount answers every other /v1/ path: its Bearer refusal, never a report
        assert response.status_code == 401 and "signature" not in response.text, platform.name
    assert snapshot(engine) == state


# --- each origin its own keys, refetch limit, metrics ----------------------------------------------------


def test_each_origin_has_its_own_key_document_and_refetch_limit_shared_by_every_process(
    settings: Settings,
    origins_on: dict[str, object],
    signers: dict[str, Signer],
    key_server: KeyServer,
    other_keys: dict[str, tuple[Signer, KeyServer]],
    engine: Engine,
    clock: Clock,
) -> None:
    configured = dataclasses.replace(settings, **origins_on)  # type: ignore[arg-type]
    replicas = [
        start_client(create_app(configured, engine=make_engine(configured.database_url), clock=clock))
        for _ in range(2)
    ]
    servers = {"github": key_server, **{name: pair[1] for name, pair in other_keys.items()}}
    for client in replicas:
        client.__enter__()
    try:
        first, second = replicas
        for platform in PLATFORMS:  # an attacker's made-up identifier on every route
            assert post(first, platform, signers[platform.name], b"[]", key_id="e" * 64) == 401
            assert post(second, platform, signers[platform.name], b"[]", key_id="f" * 64) == 401
            assert post(second, platform, signers[platform.name], b"[]") == (
                204 if platform is GITLAB else 200
            )
        # one fetch per origin, for both processes: GitHub's quota was not spent on GitLab's behalf
        assert {name: server.requests for name, server in servers.items()} == {
            "github": 1,
            "deps.dev": 1,
            "gitlab": 1,
        }
        clock.advance(61)
        assert post(first, GITLAB, signers["gitlab"], b"[]", key_id="d" * 64) == 401
        assert post(second, GITLAB, signers["gitlab"], b"[]", key_id="c" * 64) == 401
        assert {name: server.requests for name, server in servers.items()} == {
            "github": 1,
            "deps.dev": 1,
            "gitlab": 2,
        }
    finally:
        for client in replicas:
            client.__exit__(None, None, None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_origin_counts_under_its_own_label_and_github_keeps_its_own_counters(
    every_origin: TestClient,
    signers: dict[str, Signer],
    issue: Callable[..., Issued],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = every_origin
    victim = issue()
    with caplog.at_level(logging.INFO):
        assert post(client, GITLAB, signers["gitlab"], GITLAB.body(victim.api_key, "junk")) == 204
        assert post(client, GITLAB, Signer(), b"[]", key_id=signers["gitlab"].key_id) == 401
        assert post(client, DEPS_DEV, signers["deps.dev"], b'[{"token": 5}]') == 200
    metrics = scrape(client)
    for line in (
        'soundpiece_leak_reports_total{origin="gitlab"} 1.0',
        'soundpiece_leak_report_tokens_total{label="true_positive",origin="gitlab"} 1.0',
        'soundpiece_leak_report_tokens_total{label="false_positive",origin="gitlab"} 1.0',
        'soundpiece_leak_report_refusals_total{origin="gitlab",reason="bad_signature"} 1.0',
        'soundpiece_leak_report_entries_rejected_total{origin="deps.dev"} 1.0',
        'soundpiece_key_document_fetches_total{origin="gitlab",result="success"} 1.0',
    ):
        assert line in metrics, line
    assert "soundpiece_alerts_total 0.0" in metrics  # GitHub's own counters count GitHub's reports alone
    leaked = [r for r in caplog.records if r.getMessage() == "leaked key reported"]
    assert [getattr(r, "fields")["origin"] for r in leaked] == ["gitlab"]  # noqa: B009


# --- hostile reports ------------------------------------------------------------------------------------

HOSTILE = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(["token", "type", "url", "source", "x"]), inner, max_size=5)
        ),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=HOSTILE, cut=st.integers(0, 400))
def test_a_signed_hostile_body_never_makes_gitlab_retry_and_changes_nothing(
    every_origin: TestClient, signers: dict[str, Signer], engine: Engine, body: bytes, cut: int
) -> None:
    """Garbage, truncation, wrong types: GitLab gets a 2xx (a retry would fail the same way), the others
    200 or 400, and nothing is written."""
    state = snapshot(engine)
    for platform in PLATFORMS:
        for sent in (body, body[:cut]):
            status = post(every_origin, platform, signers[platform.name], sent)
            assert status in ((202, 204) if platform is GITLAB else (200, 400)), (platform.name, sent)
    assert snapshot(engine) == state


@pytest.fixture
def revocation_api(make_client: Callable[..., TestClient], engine: Engine) -> tuple[TestClient, str]:
    """A started app with the revocation API on (and no failure budget), and an instance's token."""
    client = make_client(revocation_api=True, alert_failure_limit=0)
    return client, RevocationTokenService(engine, SYSTEM_CLOCK, limit=10_000, window=60).create(
        "hostile"
    ).token


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=HOSTILE, cut=st.integers(0, 400), authorization=st.text(max_size=80))
def test_the_revocation_api_under_hostile_input_answers_400_401_or_204_and_writes_nothing(
    revocation_api: tuple[TestClient, str], engine: Engine, body: bytes, cut: int, authorization: str
) -> None:
    """Garbage, truncated and wrongly typed batches with a valid token; any Authorization text without one."""
    client, token = revocation_api
    state = snapshot(engine)
    for sent in (body, body[:cut]):
        answer = client.post("/v1/revoke_tokens", content=sent, headers={"Authorization": token})
        assert answer.status_code in (204, 400), sent
        assert "detail" in answer.json() if answer.status_code == 400 else answer.content == b""
    try:
        refused = client.post("/v1/revoke_tokens", content=body, headers={"Authorization": authorization})
    except UnicodeEncodeError:
        return  # httpx sends header values as ASCII: not a request a client can make
    assert refused.status_code == 401
    assert snapshot(engine) == state


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_huge_report_is_413_on_every_route(
    make_client: Callable[..., TestClient],
    origins_on: dict[str, object],
    signers: dict[str, Signer],
    engine: Engine,
    issue: Callable[..., Issued],
) -> None:
    client = make_client(max_body_bytes=1000, revocation_api=True, **origins_on)
    token = RevocationTokenService(engine, SYSTEM_CLOCK, limit=100, window=60).create("big").token
    victim = issue()
    state = snapshot(engine)
    for platform in PLATFORMS:
        body = platform.body(victim.api_key, url="https://x/" + "a" * 5000)
        assert post(client, platform, signers[platform.name], body) == 413, platform.name
    huge = json.dumps([{"type": "t", "token": victim.api_key, "location": "a" * 5000}]).encode()

    def streamed() -> Iterator[bytes]:  # no Content-Length: the limit holds for streamed bodies too
        yield from (huge[:600], huge[600:])

    for content in (huge, streamed()):
        answer = client.post("/v1/revoke_tokens", content=content, headers={"Authorization": token})
        assert answer.status_code == 413
    assert snapshot(engine) == state
