"""The whole alert loop without GitHub: ``test-alert`` against a real ``serve`` with the local test
signer, which nothing beyond loopback may trust; and the log line of an alert we cannot verify."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

import rules
from tests.support.api_auth import whoami
from tests.support.github import Signer, alert_body, post_alert
from tests.support.partner import TestClient
from tests.support.processes import HANG_GUARD, free_port, wait_for
from tests.support.services import HTTP, ON_SQLITE, ServerProcess, service_env
from tests.support.services import PARTNER as CLI


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=HANG_GUARD, check=False
    )


@pytest.fixture
def operator(tmp_path: Path) -> dict[str, str]:
    """A fresh data folder with one account and one key, as the README's quick start makes them."""
    env = service_env(data_dir=str(tmp_path / "data"), secret_key=Fernet.generate_key().decode())
    assert run(env, "migrate").returncode == 0
    account = json.loads(run(env, "accounts", "create", "--email", "owner@example.com", "--json").stdout)
    created = run(
        env, "keys", "create", "--account", str(account["account_id"]), "--label", "production", "--json"
    )
    env["TRIAL_KEY"] = json.loads(created.stdout)["key"]
    return env


@pytest.fixture
def trial_server(operator: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(operator, tmp_path, "serve")
    server.env = {
        **operator,
        "SOUNDPIECE_TEST_SIGNER": "on",
        "SOUNDPIECE_DASHBOARD_URL": f"{server.url}/dashboard",
        "SOUNDPIECE_MAIL_POLL_INTERVAL": "3600",  # so only the nudge after the alert can send it in time
    }
    with server:
        yield server


def test_a_test_alert_revokes_the_key_and_mails_its_owner(
    trial_server: ServerProcess, tmp_path: Path
) -> None:
    key = trial_server.env["TRIAL_KEY"]
    assert whoami(HTTP, key, base_url=trial_server.url).status_code == 200
    sent = run(trial_server.env, "test-alert", key)  # the default --to: SOUNDPIECE_DASHBOARD_URL's origin
    assert sent.returncode == 0, sent.stderr
    assert "true_positive" in sent.stdout and key not in sent.stdout + sent.stderr
    assert whoami(HTTP, key, base_url=trial_server.url).status_code == 401
    (leak,) = json.loads(run(trial_server.env, "leaks", "list", "--json").stdout)
    assert (leak["action"], leak["token_hash"]) == ("revoked", rules.identity(key))
    outbox = tmp_path / "data" / "outbox"
    wait_for(lambda: list(outbox.glob("leak-*.eml")), HANG_GUARD, what="the leak mail in the outbox")
    (mail,) = outbox.glob("leak-*.eml")
    message = message_from_bytes(mail.read_bytes(), policy=policy.default)
    assert message["To"] == "owner@example.com" and "production" in message["Subject"]
    log = trial_server.log()
    assert "SOUNDPIECE_TEST_SIGNER is on" in log and "never in production" in log
    assert f"serving {trial_server.url}; dashboard {trial_server.url}/dashboard" in log


def test_a_token_may_come_from_standard_input_and_a_stranger_token_changes_nothing(
    trial_server: ServerProcess,
) -> None:
    stranger = rules.API_KEY.mint()  # checksum-valid, never issued
    answer = run(
        trial_server.env, "test-alert", "-", "--to", trial_server.url, "--json", stdin=stranger + "\n"
    )
    assert answer.returncode == 0
    assert json.loads(answer.stdout)["feedback"][0]["label"] == "false_positive"
    assert whoami(HTTP, trial_server.env["TRIAL_KEY"], base_url=trial_server.url).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_the_test_signer_is_refused_beyond_loopback(operator: dict[str, str], host: str) -> None:
    env = {**operator, "SOUNDPIECE_TEST_SIGNER": "on"}
    port = free_port()
    result = run(env, "serve", "--host", host, "--port", str(port))
    assert result.returncode == 2
    assert f"SOUNDPIECE_TEST_SIGNER is on: refusing to listen on {host}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_service_that_does_not_trust_the_test_signer_refuses_its_alerts(
    operator: dict[str, str], tmp_path: Path
) -> None:
    key = operator["TRIAL_KEY"]
    missing = run(operator, "test-alert", key, "--to", "http://127.0.0.1:9")
    assert missing.returncode == 2 and "no test signer at" in missing.stderr
    with ServerProcess({**operator, "SOUNDPIECE_TEST_SIGNER": "on"}, tmp_path, "with"):
        pass  # made the signer in the data folder
    with ServerProcess(operator, tmp_path, "without") as server:
        refused = run(operator, "test-alert", key, "--to", server.url)
        assert refused.returncode == 1
        # 401, or 503 where GitHub's own key document cannot be fetched (no network here)
        assert refused.stdout.startswith(("refused 401", "refused 503"))
        assert "SOUNDPIECE_TEST_SIGNER=on" in refused.stdout
        assert whoami(HTTP, key, base_url=server.url).status_code == 200


@pytest.mark.parametrize(
    "target", ["http://example.com", "http://10.1.2.3:8000", "https://api.soundpiece.co"]
)
def test_test_alerts_go_to_loopback_only(operator: dict[str, str], target: str) -> None:
    result = run(operator, "test-alert", operator["TRIAL_KEY"], "--to", target)
    assert result.returncode == 2 and "loopback" in result.stderr


# --- an alert we cannot verify: the log says why ------------------------------------------------


@ON_SQLITE
def test_a_missing_key_document_is_logged_with_its_cause_and_next_fetch(
    make_client: Callable[..., TestClient], signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/meta/public_keys/secret_scanning"
    client = make_client(github_keys_url=closed)
    with caplog.at_level(logging.ERROR, logger="partner_endpoint.alerts.receiver"):
        assert post_alert(client, signer, alert_body(rules.API_KEY.mint())).status_code == 503
    (line,) = [r.getMessage() for r in caplog.records if "no GitHub public key" in r.getMessage()]
    assert f"fetching {closed} failed: ConnectError" in line
    assert "next fetch allowed at 20" in line
