"""Traffic counts are exact across worker processes and replicas: requests from three client addresses
to two workers of one ``serve`` and to a second ``serve`` on the same PostgreSQL database equal the
counts shown, after one flush interval, and stay equal (nothing is counted twice)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cryptography.fernet import Fernet

from tests.support.processes import HANG_GUARD, wait_for
from tests.support.services import ON_POSTGRES, ServerProcess, service_env
from tests.support.services import partner_cli as cli
from tests.support.workers import pin_every_worker

ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
"""Loopback is a /8 on Linux: each is a client address of its own, as the allowlist reads it."""


def send(server: ServerProcess, address: str, key: str, count: int) -> int:
    """``count`` requests from ``address`` to each worker of ``server``; how many were sent in all."""
    assert server.process is not None
    auth = {"Authorization": f"Bearer {key}"}
    pinned = pin_every_worker(server.process.pid, server.port, server.workers, auth, source=address)
    for connection in pinned:
        for _ in range(count):
            assert connection.get("/v1/whoami", auth) == 200
        connection.connection.close()
    return count * len(pinned)


@ON_POSTGRES
def test_counts_from_three_addresses_to_three_processes_are_exact(tmp_path: Path, database_url: str) -> None:
    env = service_env(
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        mail_dir=str(tmp_path / "outbox"),
        traffic_flush_interval="0.5",
        log_level="WARNING",
    )
    cli(env, "migrate")
    account = cli(env, "accounts", "create", "--email", "owner@example.com")["account_id"]
    key = cli(env, "keys", "create", "--account", str(account), "--label", "busy")
    sent: Counter[str] = Counter()
    with (
        ServerProcess(env, tmp_path, "two-workers", workers=2) as first,
        ServerProcess(env, tmp_path, "replica") as second,
    ):
        for round_, address in enumerate(ADDRESSES * 3):
            for server in (first, second):
                sent[address] += send(server, address, key["key"], 7 + round_)

        def shown() -> dict[str, int]:
            usage = cli(env, "keys", "usage", str(key["key_id"]))
            return {a["address"]: a["requests"] for a in usage["by_address"]}

        last: list[dict[str, int]] = []

        def added_up() -> bool:
            last[:] = [shown()]
            return last[0] == dict(sent)

        try:
            wait_for(added_up, HANG_GUARD, what="every process's counts, added up")
        except AssertionError:
            assert last[0] == dict(sent)  # shows which address is off, and by how much
            raise
        usage = cli(env, "keys", "usage", str(key["key_id"]))
    # The servers are stopped: whatever each still held was written at shutdown, once.
    after = cli(env, "keys", "usage", str(key["key_id"]))
    assert {a["address"]: a["requests"] for a in after["by_address"]} == dict(sent)
    assert after["total"] == usage["total"] == sum(sent.values())
    assert sum(h["requests"] for h in after["by_hour"]) == sum(sent.values())
    listed = cli(env, "keys", "list", "--account", str(account))
    assert listed[0]["last_used_at"] is not None
