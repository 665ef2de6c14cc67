"""``test-alert --origin``: the local test signer signs as deps.dev or GitLab, with that platform's headers,
entry fields and route, against a real ``serve`` that turned that origin on; and the revocation API's
tokens, made with the command line, are kept as hashes only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

import rules
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.store.db import make_engine, read_transaction, write_transaction
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.models import revocation_tokens
from partner_endpoint.store.secretbox import SecretBox
from tests.partner_endpoint.test_trial_alert import run
from tests.support.partner import add_account, add_key
from tests.support.services import ServerProcess, service_env

KEYS = ("FIRST_KEY", "SECOND_KEY", "THIRD_KEY")


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A data folder with an account and three keys (put in the store as the key service stores them)."""
    data = tmp_path_factory.mktemp("trial-origins") / "data"
    data.mkdir(mode=0o700)
    secret_key = Fernet.generate_key().decode()
    env = service_env(data_dir=str(data), secret_key=secret_key)
    engine = make_engine(f"sqlite:///{data / 'soundpiece.db'}")
    try:
        migrate(engine)
        with write_transaction(engine) as conn:
            account = add_account(conn, "owner@example.com", [], SYSTEM_CLOCK.now())
            for name in KEYS:
                env[name] = add_key(conn, SecretBox([secret_key]), account, name, SYSTEM_CLOCK.now()).api_key
    finally:
        engine.dispose()
    return env


@pytest.fixture(scope="module")
def trial_server(
    operator: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """deps.dev and GitLab on, trusting the test signer alone (GitLab names its document at onboarding)."""
    env = {
        **operator,
        "SOUNDPIECE_TEST_SIGNER": "on",
        "SOUNDPIECE_DEPSDEV_ALERTS": "on",
        "SOUNDPIECE_GITLAB_ALERTS": "on",
        "SOUNDPIECE_MAIL_WORKER": "off",
    }
    with ServerProcess(env, tmp_path_factory.mktemp("logs"), "serve") as server:
        server.env = env
        yield server


def whoami(server: ServerProcess, key: str) -> int:
    return httpx.get(f"{server.url}/v1/whoami", headers={"Authorization": f"Bearer {key}"}).status_code


def test_a_test_alert_signed_as_gitlab_then_as_deps_dev(trial_server: ServerProcess) -> None:
    env, first, second = trial_server.env, trial_server.env["FIRST_KEY"], trial_server.env["SECOND_KEY"]
    sent = run(env, "test-alert", first, "--origin", "gitlab", "--to", trial_server.url)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "accepted (204)" in sent.stdout and first not in sent.stdout + sent.stderr
    assert whoami(trial_server, first) == 401
    sent = run(env, "test-alert", second, "--origin", "deps.dev", "--to", trial_server.url, "--json")
    assert json.loads(sent.stdout)["feedback"][0]["label"] == "true_positive"
    assert whoami(trial_server, second) == 401
    listed = run(env, "leaks", "list").stdout.splitlines()
    assert [line.split("\t")[3] for line in listed] == ["deps.dev, in a package on PyPI", "GitLab"]
    leaks = json.loads(run(env, "leaks", "list", "--json").stdout)
    assert [(leak["origin"], leak["token_hash"]) for leak in leaks] == [
        ("deps.dev", rules.identity(second)),
        ("gitlab", rules.identity(first)),
    ]


def test_an_origin_that_is_off_refuses_its_test_alert(operator: dict[str, str], tmp_path: Path) -> None:
    env = {**operator, "SOUNDPIECE_TEST_SIGNER": "on"}
    with ServerProcess(env, tmp_path, "github-only") as server:
        refused = run(env, "test-alert", operator["THIRD_KEY"], "--origin", "gitlab", "--to", server.url)
        assert refused.returncode == 1
        assert refused.stdout.startswith("refused 401") and "SOUNDPIECE_GITLAB_ALERTS=on" in refused.stdout
        assert whoami(server, operator["THIRD_KEY"]) == 200


def test_revocation_tokens_are_shown_once_and_kept_as_hashes(operator: dict[str, str]) -> None:
    created = json.loads(
        run(operator, "revocation-tokens", "create", "--name", "gitlab.example.com", "--json").stdout
    )
    token = created["token"]
    human = run(operator, "revocation-tokens", "create", "--name", "other.example.com")
    assert human.returncode == 0 and "Shown once" in human.stdout
    listed = run(operator, "revocation-tokens", "list")
    assert (
        token not in listed.stdout
        and f"…{token[-4:]}" in listed.stdout
        and "gitlab.example.com" in listed.stdout
    )
    engine = make_engine(f"sqlite:///{Path(operator['SOUNDPIECE_DATA_DIR']) / 'soundpiece.db'}")
    try:
        with read_transaction(engine) as conn:
            stored = [tuple(row) for row in conn.execute(select(revocation_tokens))]
    finally:
        engine.dispose()
    assert all(token not in repr(row) for row in stored)
    assert (created["token_id"], "gitlab.example.com", rules.identity(token)) in [
        (r[0], r[1], r[2]) for r in stored
    ]
    assert run(operator, "revocation-tokens", "revoke", "999").returncode == 2
    bad_name = run(operator, "revocation-tokens", "create", "--name", "evil\u202ename")
    assert bad_name.returncode == 2 and "Traceback" not in bad_name.stderr
