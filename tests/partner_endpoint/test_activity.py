"""The activity log, written in the transaction of each change, and what the command line shows of it
and of a key's traffic: ``activity`` (JSON lines), ``keys usage``, ``leaks list``'s after_report."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine

from partner_endpoint.services.accounts import AccountService
from partner_endpoint.services.keys import KeyService
from partner_endpoint.store import activity
from partner_endpoint.store.activity import Actor
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.models import activity as activity_table
from partner_endpoint.store.secretbox import SecretBox
from tests.support.api_auth import bearer
from tests.support.partner import Clock, Issued, report_leak, rows
from tests.support.processes import HANG_GUARD
from tests.support.services import ROOT, ServerProcess, partner_command, service_env


def kinds(engine: Engine) -> list[tuple[str, str, int | None]]:
    return [(r["kind"], r["actor"], r["key_id"]) for r in rows(engine, activity_table)]


def test_every_change_is_logged_with_who_in_its_own_transaction(
    engine: Engine, box: SecretBox, clock: Clock, issue: Callable[..., Issued]
) -> None:
    accounts = AccountService(engine, clock)
    keys = KeyService(engine, box, clock)
    account = accounts.create("owner@example.com", [])
    dashboard = Actor("owner@example.com", "203.0.113.9")
    new = keys.create(account, "web", actor=dashboard)
    assert not isinstance(new, int)
    rotated = keys.create(account, "web", replacing=new.key, actor=dashboard)
    assert not isinstance(rotated, int)
    keys.revoke(new.key.key_id)
    keys.revoke(new.key.key_id)  # already revoked: nothing happened, nothing logged
    keys.delete(rotated.key.key_id, actor=dashboard)
    accounts.allow(account, ["10.0.0.0/8"])
    assert kinds(engine) == [
        ("key_created", "owner@example.com", new.key.key_id),
        ("key_rotated", "owner@example.com", rotated.key.key_id),
        ("key_revoked", "command line", new.key.key_id),
        ("key_deleted", "owner@example.com", rotated.key.key_id),
        ("allowlist_changed", "command line", None),
    ]
    logged = rows(engine, activity_table)
    assert logged[0]["client"] == "203.0.113.9" and json.loads(logged[4]["details"])["after"] == [
        "10.0.0.0/8"
    ]
    assert new.api_key not in repr(logged) and new.signing_secret not in repr(logged)


def test_a_change_that_is_rolled_back_leaves_no_entry(engine: Engine, clock: Clock) -> None:
    account = AccountService(engine, clock).create("owner@example.com", [])
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        activity.record(conn, account, "key_created", clock.now(), Actor("x"))
        raise RuntimeError("the change fails after its entry")
    assert rows(engine, activity_table) == []
    with pytest.raises(ValueError), write_transaction(engine) as conn:
        activity.record(conn, account, "made_up", clock.now(), Actor("x"))


def test_sign_in_out_and_a_leak_report_are_logged(
    browser: Any, engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    issued = issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    report_leak(
        engine,
        issued.api_key,
        clock,
        url="https://github.com/o/r/blob/x",
        source="commit",
        policy="revoke",
        sender="s@x",
    )
    report_leak(
        engine,
        issued.api_key,
        clock,
        url="https://github.com/o/r/blob/x",
        source="commit",
        policy="revoke",
        sender="s@x",
    )
    browser.sign_out()
    logged = kinds(engine)
    assert ("signed_in", "owner@example.com", None) in logged and (
        "signed_out",
        "owner@example.com",
        None,
    ) in logged
    assert logged.count(("leak_reported", "GitHub", issued.key_id)) == 1  # a redelivery is no new report
    signed_in = next(r for r in rows(engine, activity_table) if r["kind"] == "signed_in")
    assert signed_in["client"] is not None


# --- the command line -------------------------------------------------------------------------------


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = partner_command(env, *args)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, str], dict[str, Any]]]:
    """A real serve with one key used from two addresses, flagged as leaked, then used from a third."""
    home = tmp_path_factory.mktemp("activity")
    env = service_env(
        data_dir=str(home),
        secret_key=Fernet.generate_key().decode(),
        traffic_flush_interval="0.2",
        leak_policy="flag",
        test_signer="on",
        log_level="WARNING",
    )
    cli(env, "migrate")
    cli(env, "accounts", "create", "--email", "owner@example.com")
    key = json.loads(cli(env, "keys", "create", "--account", "1", "--label", "busy", "--json").stdout)
    server = ServerProcess(env, home, "serve")
    env["SOUNDPIECE_DASHBOARD_URL"] = f"{server.url}/dashboard"
    server.env = env
    with server:
        yield server, env, key


def send(server: ServerProcess, key: str, address: str, count: int) -> None:
    import httpx

    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30) as client:
        for _ in range(count):
            assert client.get(f"{server.url}/v1/whoami", headers=bearer(key)).status_code == 200


def test_keys_usage_leaks_list_and_activity_as_json(
    served: tuple[ServerProcess, dict[str, str], dict[str, Any]],
) -> None:
    server, env, key = served
    send(server, key["key"], "127.0.0.2", 4)
    send(server, key["key"], "127.0.0.3", 2)
    _wait_for_usage(env, key["key_id"], 6)
    assert (
        json.loads(cli(env, "test-alert", key["key"], "--json").stdout)["feedback"][0]["label"]
        == "true_positive"
    )
    send(server, key["key"], "127.0.0.4", 3)  # after the report, from an address new to the key
    send(server, key["key"], "127.0.0.2", 1)  # and from one that used it before
    usage = _wait_for_usage(env, key["key_id"], 10)
    assert {a["address"]: a["requests"] for a in usage["by_address"]} == {
        "127.0.0.2": 5,
        "127.0.0.3": 2,
        "127.0.0.4": 3,
    }
    assert usage["refused"] == 0 and sum(h["requests"] for h in usage["by_hour"]) == 10
    for entry in usage["by_address"]:
        datetime.fromisoformat(entry["first"]) <= datetime.fromisoformat(entry["last"])  # noqa: B015
    (leak,) = json.loads(cli(env, "leaks", "list", "--json").stdout)
    after = leak["after_report"]
    seen = {a["address"]: a["seen_before_report"] for a in after["addresses"]}
    assert seen["127.0.0.4"] is False and seen["127.0.0.2"] is True
    assert after["addresses"][0]["address"] == "127.0.0.4"  # the new address first
    lines = cli(env, "activity", "--account", "1").stdout.splitlines()
    logged = [json.loads(line) for line in lines]
    assert [e["kind"] for e in logged][:2] == ["key_created", "leak_reported"]
    assert all(e["account_id"] == 1 for e in logged) and logged == sorted(logged, key=lambda e: e["id"])
    future = (datetime.fromisoformat(logged[-1]["at"]) + timedelta(days=1)).isoformat()
    assert cli(env, "activity", "--since", future).stdout == ""
    assert key["key"] not in "".join(lines)


def _wait_for_usage(env: dict[str, str], key_id: int, total: int) -> dict[str, Any]:
    from tests.support.processes import wait_for

    found: dict[str, Any] = {}

    def counted() -> bool:
        found.update(json.loads(cli(env, "keys", "usage", str(key_id), "--json").stdout))
        return bool(found["total"] == total)

    wait_for(counted, HANG_GUARD, what=f"{total} requests counted")
    return found


def test_usage_of_a_key_that_is_not_there_is_an_error(
    served: tuple[ServerProcess, dict[str, str], dict[str, Any]],
) -> None:
    _server, env, _key = served
    result = partner_command(env, "keys", "usage", "999")
    assert result.returncode == 2 and "no key 999" in result.stderr
    bad = partner_command(env, "activity", "--since", "yesterday")
    assert bad.returncode == 2 and "not a time" in bad.stderr
    assert ROOT.exists()
