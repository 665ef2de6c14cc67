"""Fixtures for the partner endpoint: settings, a test client, issued keys, the dashboard.

The database (``database_url``, ``engine``), GitHub's side (``signer``, ``key_server``) and an SMTP
server (``smtp``) come from tests/conftest.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine

from partner_endpoint.app import create_app
from partner_endpoint.settings import Settings
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.secretbox import SecretBox
from tests.support.dashboard import Browser, Mailbox
from tests.support.github import KeyServer, Signer
from tests.support.partner import METRICS_TOKEN, Clock, Issued, TestClient, add_account, add_key, start_client

# --- clocks ------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


# --- the service ---------------------------------------------------------------------------------


@pytest.fixture
def settings(database_url: str, key_server: KeyServer, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        github_keys_url=key_server.url,
        secret_key=Fernet.generate_key().decode(),
        mail_dir=tmp_path / "outbox",
        mail_worker=False,
        metrics_token=METRICS_TOKEN,
    )


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    assert settings.secret_key
    return SecretBox([settings.secret_key])


@pytest.fixture
def make_client(settings: Settings, engine: Engine, clock: Clock) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**setting_overrides, client=(host, port))``: a started app on the test database."""
    open_clients: list[TestClient] = []

    def make(client: tuple[str, int] = ("127.0.0.1", 50000), **overrides: Any) -> TestClient:
        app = create_app(
            dataclasses.replace(settings, **overrides),
            engine=engine,
            clock=clock,
        )
        test = start_client(app, client)
        test.__enter__()
        open_clients.append(test)
        return test

    yield make
    for test in open_clients:
        test.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


# --- the other origins ------------------------------------------------------------------------------


@pytest.fixture
def other_keys() -> Iterator[dict[str, tuple[Signer, KeyServer]]]:
    """deps.dev's and GitLab's signing keys, each published by a key server of its own."""
    signers = {"deps.dev": Signer(), "gitlab": Signer()}
    servers = {name: KeyServer(signer.document) for name, signer in signers.items()}
    yield {name: (signers[name], servers[name]) for name in signers}
    for server in servers.values():
        server.close()


@pytest.fixture
def origins_on(other_keys: dict[str, tuple[Signer, KeyServer]]) -> dict[str, object]:
    """The settings that turn deps.dev and GitLab on, with their key documents."""
    return {
        "depsdev_alerts": True,
        "depsdev_keys_url": other_keys["deps.dev"][1].url,
        "gitlab_alerts": True,
        "gitlab_keys_url": other_keys["gitlab"][1].url,
    }


@pytest.fixture
def every_origin(make_client: Callable[..., TestClient], origins_on: dict[str, object]) -> TestClient:
    """A started app with GitHub, deps.dev and GitLab on."""
    return make_client(**origins_on)


@pytest.fixture
def signers(signer: Signer, other_keys: dict[str, tuple[Signer, KeyServer]]) -> dict[str, Signer]:
    """Each platform's signing key, by origin name."""
    return {"github": signer, **{name: pair[0] for name, pair in other_keys.items()}}


# --- key store helpers ---------------------------------------------------------------------------


@pytest.fixture
def issue(engine: Engine, box: SecretBox, clock: Clock) -> Callable[..., Issued]:
    """``issue(label=..., email=..., allow_ips=[...])``: an account with one fresh key pair."""

    def make(
        label: str = "production", email: str = "owner@example.com", allow_ips: list[str] | None = None
    ) -> Issued:
        with write_transaction(engine) as conn:
            account_id = add_account(conn, email, allow_ips or [], clock.now())
            new = add_key(conn, box, account_id, label, clock.now())
        return Issued(account_id, new.key_id, new.api_key, new.signing_secret)

    return make


# --- the dashboard -------------------------------------------------------------------------------


@pytest.fixture
def mailbox(engine: Engine, settings: Settings, box: SecretBox, clock: Clock) -> Mailbox:
    return Mailbox(engine, settings, box, clock, settings.mail_dir)


@pytest.fixture
def open_browser(make_client: Callable[..., TestClient], mailbox: Mailbox) -> Callable[..., Browser]:
    """``open_browser(**setting_overrides, client=(host, port))``: its own cookie jar on the dashboard."""

    def make(**overrides: Any) -> Browser:
        return Browser(make_client(**overrides), mailbox)

    return make


@pytest.fixture
def browser(open_browser: Callable[..., Browser]) -> Browser:
    return open_browser()
