"""``soundpiece-partner`` end to end, as subprocesses, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings

import rules
from partner_endpoint.store.db import make_engine
from partner_endpoint.store.models import api_keys
from tests.support.github import KeyServer, Signer, alert_body
from tests.support.invalid_text import hidden_in_label
from tests.support.partner import rows
from tests.support.processes import HANG_GUARD, free_port
from tests.support.services import ON_SQLITE
from tests.support.services import PARTNER as CLI


@pytest.fixture
def env(database_url: str, tmp_path: Path, key_server: KeyServer) -> dict[str, str]:
    """The environment of a service whose database ``migrate`` has created."""
    values = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")},
        "SOUNDPIECE_DATABASE_URL": database_url,
        "SOUNDPIECE_SECRET_KEY": Fernet.generate_key().decode(),
        "SOUNDPIECE_MAIL_DIR": str(tmp_path / "outbox"),
        "SOUNDPIECE_GITHUB_KEYS_URL": key_server.url,
        "SOUNDPIECE_LOG_LEVEL": "WARNING",
    }
    cli(values, "migrate")
    return values


def cli(env: dict[str, str], *args: str, expect: int = 0) -> Any:
    result = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == expect, result.stderr
    return json.loads(result.stdout) if "--json" in args and expect == 0 else result


def test_accounts_keys_leaks_with_json(env: dict[str, str]) -> None:
    account = cli(
        env, "accounts", "create", "--email", "o@example.com", "--allow-ip", "10.0.0.0/8", "::1", "--json"
    )
    account_id = str(account["account_id"])
    created = cli(env, "keys", "create", "--account", account_id, "--label", "ci", "--json")
    assert rules.recognise(created["key"]) is rules.API_KEY
    assert rules.recognise(created["signing_secret"]) is rules.WEBHOOK_SECRET
    listed = cli(env, "keys", "list", "--account", account_id, "--json")
    assert listed == [
        {
            "key_id": created["key_id"],
            "label": "ci",
            "key_suffix": created["key"][-4:],
            "status": "active",
            "created_at": listed[0]["created_at"],
            "last_used_at": None,
        }
    ]
    assert created["key"] not in json.dumps(listed)
    revoked = cli(env, "keys", "revoke", str(created["key_id"]), "--json")
    assert revoked == {"key_id": created["key_id"], "revoked": True, "changed": True}
    assert cli(env, "keys", "list", "--account", account_id, "--json")[0]["status"] == "revoked"
    assert cli(env, "leaks", "list", "--json") == []
    human = cli(env, "keys", "list", "--account", account_id)
    assert "revoked" in human.stdout and created["key"] not in human.stdout
    fenced = cli(
        env, "accounts", "set-allowlist", "--account", account_id, "--allow-ip", "192.0.2.0/24", "--json"
    )
    assert fenced == {"account_id": int(account_id), "allow_ips": ["192.0.2.0/24"]}
    assert "any address" in cli(env, "accounts", "set-allowlist", "--account", account_id).stdout
    result = cli(
        env, "accounts", "set-allowlist", "--account", account_id, "--allow-ip", "10.0.0.1/8", expect=2
    )
    assert "10.0.0.0/8" in result.stderr and "Traceback" not in result.stderr
    assert "no account 999" in cli(env, "accounts", "set-allowlist", "--account", "999", expect=2).stderr


@ON_SQLITE
def test_errors_exit_non_zero_without_traceback(env: dict[str, str]) -> None:
    result = cli(env, "keys", "create", "--account", "999", "--label", "x", expect=2)
    assert "no account 999" in result.stderr and "Traceback" not in result.stderr
    result = cli(env, "accounts", "create", "--email", "x@example.org", "--allow-ip", "not-a-net", expect=2)
    assert "Traceback" not in result.stderr
    # A range with bits set after its prefix is a typo (it used to be stored as 192.0.0.0/2).
    result = cli(
        env, "accounts", "create", "--email", "x@example.org", "--allow-ip", "203.0.113.5/2", expect=2
    )
    assert "203.0.113.5/2" in result.stderr and "192.0.0.0/2" in result.stderr
    assert "Traceback" not in result.stderr
    bad_policy = {**env, "SOUNDPIECE_LEAK_POLICY": "ignore"}
    assert "SOUNDPIECE_LEAK_POLICY" in cli(bad_policy, "leaks", "list", expect=2).stderr


@ON_SQLITE
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=hidden_in_label())
def test_keys_create_refuses_a_label_the_dashboard_refuses(
    env: dict[str, str], database_url: str, label: str
) -> None:
    """One rule for a label wherever it enters (domain/labels.py): no invisible characters."""
    account = str(cli(env, "accounts", "create", "--email", "o@example.com", "--json")["account_id"])
    refused = cli(env, "keys", "create", "--account", account, "--label", label, expect=2)
    assert "cannot be shown" in refused.stderr and "Traceback" not in refused.stderr
    engine = make_engine(database_url)
    try:
        assert rows(engine, api_keys) == []
    finally:
        engine.dispose()


# SQLite only: the store's side of allow-ip runs on both databases in-process (test_dashboard_keys).
@ON_SQLITE
def test_allow_ip_and_disallow_ip(env: dict[str, str]) -> None:
    account = str(cli(env, "accounts", "create", "--email", "o@example.com", "--json")["account_id"])
    allowed = cli(
        env, "accounts", "allow-ip", "--account", account, "203.0.113.0/24", "2001:db8::/48", "--json"
    )
    assert allowed == {"account_id": int(account), "ip_allowlist": ["203.0.113.0/24", "2001:db8::/48"]}
    again = cli(env, "accounts", "allow-ip", "--account", account, "192.0.2.7", "203.0.113.0/24", "--json")
    assert again["ip_allowlist"] == ["203.0.113.0/24", "2001:db8::/48", "192.0.2.7/32"]
    # Host bits after the prefix are a typo, not a wish for a huge range: refused, nothing changed.
    typo = cli(env, "accounts", "allow-ip", "--account", account, "203.0.113.5/2", expect=2)
    assert "203.0.113.5/2" in typo.stderr and "Traceback" not in typo.stderr
    assert (
        "not in account"
        in cli(env, "accounts", "disallow-ip", "--account", account, "10.0.0.0/8", expect=2).stderr
    )
    assert (
        "no account 999"
        in cli(env, "accounts", "allow-ip", "--account", "999", "10.0.0.0/8", expect=2).stderr
    )
    removed = cli(
        env, "accounts", "disallow-ip", "--account", account, "203.0.113.0/24", "192.0.2.7", "--json"
    )
    assert removed["ip_allowlist"] == ["2001:db8::/48"]
    opened = cli(env, "accounts", "disallow-ip", "--account", account, "2001:db8::/48")
    assert "from any address" in opened.stdout


@ON_SQLITE
def test_serve_and_mail_worker_end_to_end(env: dict[str, str], signer: Signer, tmp_path: Path) -> None:
    """A real uvicorn process: healthz, whoami, a signed alert, then the standalone mail worker."""
    account_id = str(cli(env, "accounts", "create", "--email", "o@example.com", "--json")["account_id"])
    created = cli(env, "keys", "create", "--account", account_id, "--label", "e2e", "--json")
    port = free_port()
    serve_env = {**env, "SOUNDPIECE_MAIL_WORKER": "off"}
    server = subprocess.Popen(
        [CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=serve_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HANG_GUARD
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.1)
        whoami = httpx.get(f"{base}/v1/whoami", headers={"Authorization": f"Bearer {created['key']}"})
        assert whoami.json() == {"account_id": int(account_id), "key_id": created["key_id"], "label": "e2e"}
        body = alert_body(created["key"])
        answer = httpx.post(f"{base}/v1/secret-scanning/github", content=body, headers=signer.headers(body))
        assert answer.json()[0]["label"] == "true_positive"
        assert (
            httpx.get(f"{base}/v1/whoami", headers={"Authorization": f"Bearer {created['key']}"}).status_code
            == 401
        )
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=HANG_GUARD)
    assert created["key"] not in stderr and created["signing_secret"] not in stderr
    log_lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(line.get("token_hash") == rules.identity(created["key"]) for line in log_lines)
    assert cli(env, "mail-worker", "--once", "--json") == {"sent": 1}
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    assert "e2e" in eml.read_text()
    (leak,) = cli(env, "leaks", "list", "--json")
    assert leak["action"] == "revoked" and leak["token_hash"] == rules.identity(created["key"])
