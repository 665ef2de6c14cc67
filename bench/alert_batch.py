#!/usr/bin/env python
"""One large alert batch, all of it our own keys (not a test): how long until GitHub gets its answer.

GitHub gives a partner endpoint 30 s. The batch here is ``--keys`` (default 10,000) keys that
we issued, each reported once: every one is revoked, recorded and gets one mail queued. It is
measured on SQLite and on PostgreSQL (a schema of its own on ``--postgres-url``, loopback; without
one, on a private cluster started for the run), in two ways, each with fresh keys:

- in-process: :func:`partner_endpoint.services.leaks.respond`, the database work alone;
- through the endpoint: ``soundpiece-partner serve --workers 1`` on 127.0.0.1, one signed POST
  (verification, parsing, the database work, the feedback answer), timed by the client.

Each is followed by a redelivery of the same batch (everything already revoked: reads and
``last_seen`` updates only). Target: under 5 s per batch. Figures are single runs, not medians:
run it a few times (``--rounds``) on a quiet machine and compare the backends side by side.
Usage: .venv/bin/python bench/alert_batch.py [--keys 10000] [--rounds 1] [--only sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts the repository root on sys.path, for tests.support)
import httpx
from cryptography.fernet import Fernet
from endpoint_load import BIN, HOST, process
from sqlalchemy import Engine, func, insert, select

import rules
from partner_endpoint.alerts.batch import parse_batch
from partner_endpoint.alerts.receiver import sightings
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.store.db import make_engine, read_transaction, write_transaction
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.models import api_keys, leak_events, mail_outbox, signing_secrets
from partner_endpoint.store.secretbox import SecretBox
from tests.support.github import ALERT_PATH, KeyServer, Signer
from tests.support.partner import add_account
from tests.support.postgres_cluster import PrivatePostgres
from tests.support.processes import free_port
from tests.support.services import scratch_schema


def batch_body(tokens: list[str]) -> bytes:
    """GitHub's format: one entry per token, each at a location of its own."""
    return json.dumps(
        [
            {
                "token": token,
                "type": "soundpiece_api_key",
                "url": f"https://github.com/octo-org/app/blob/4f6e1a2/config/env.{i}.yml",
                "source": "content",
            }
            for i, token in enumerate(tokens)
        ],
        separators=(",", ":"),
    ).encode()


def issue_keys(engine: Engine, box: SecretBox, count: int) -> list[str]:
    """``count`` fresh key pairs on one new account, inserted in bulk (setup, not measured)."""
    now = datetime.now(UTC)
    pairs = [rules.mint_pair() for _ in range(count)]
    with write_transaction(engine) as conn:
        account = add_account(conn, "bench@example.com", [], now)
        ids = (
            conn.execute(
                insert(api_keys).returning(api_keys.c.id, sort_by_parameter_order=True),
                [
                    {
                        "account_id": account,
                        "label": f"bench {i}",
                        "key_hash": rules.identity(pair.api_key),
                        "key_suffix": pair.api_key[-4:],
                        "status": "active",
                        "created_at": now,
                    }
                    for i, pair in enumerate(pairs)
                ],
            )
            .scalars()
            .all()
        )
        conn.execute(
            insert(signing_secrets),
            [
                {
                    "key_id": key_id,
                    "secret_hash": rules.identity(pair.signing_secret),
                    "secret_encrypted": box.encrypt(pair.signing_secret),
                }
                for key_id, pair in zip(ids, pairs, strict=True)
            ],
        )
    return [pair.api_key for pair in pairs]


def counts(engine: Engine) -> dict[str, int]:
    with read_transaction(engine) as conn:
        return {
            "revoked": conn.execute(
                select(func.count()).select_from(api_keys).where(api_keys.c.status == "revoked")
            ).scalar_one(),
            "leak_events": conn.execute(select(func.count()).select_from(leak_events)).scalar_one(),
            "mails": conn.execute(select(func.count()).select_from(mail_outbox)).scalar_one(),
        }


@contextmanager
def database(backend: str, tmp: Path, postgres_url: str) -> Iterator[str]:
    """A fresh, migrated database: a SQLite file, or a PostgreSQL schema dropped at the end."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp / f'batch-{uuid.uuid4().hex[:8]}.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    with scratch_schema(postgres_url, "bench") as url:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url


def in_process(url: str, secret_key: str, count: int) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        tokens = issue_keys(engine, SecretBox([secret_key]), count)
        reported = sightings(parse_batch(batch_body(tokens)).alerts)
        leaks = LeakService(engine, SYSTEM_CLOCK, policy="revoke", sender="s@soundpiece.invalid")
        timings = {}
        for phase in ("first_s", "redelivery_s"):
            started = time.perf_counter()
            leaks.respond(reported)
            timings[phase] = round(time.perf_counter() - started, 3)
        return timings | counts(engine)
    finally:
        engine.dispose()


def through_endpoint(url: str, secret_key: str, count: int, tmp: Path) -> dict[str, Any]:
    signer = Signer()
    engine = make_engine(url)
    tokens = issue_keys(engine, SecretBox([secret_key]), count)
    body = batch_body(tokens)
    with KeyServer(signer.document) as key_server:
        keys_url = key_server.url
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")},
            "SOUNDPIECE_DATABASE_URL": url,
            "SOUNDPIECE_SECRET_KEY": secret_key,
            "SOUNDPIECE_GITHUB_KEYS_URL": keys_url,
            "SOUNDPIECE_MAIL_DIR": str(tmp / "outbox"),
            "SOUNDPIECE_MAIL_WORKER": "false",  # the batch, not the mail, is measured
            "SOUNDPIECE_MAX_BODY_BYTES": str(max(len(body) * 2, 2 << 20)),
            "SOUNDPIECE_LOG_LEVEL": "WARNING",
        }
        port = free_port()
        command = [str(BIN / "soundpiece-partner"), "serve", "--host", HOST, "--port", str(port)]
        with process(command, env, port, log=tmp / "serve.log"), httpx.Client(timeout=60) as client:
            headers = {
                "Github-Public-Key-Identifier": signer.key_id,
                "Github-Public-Key-Signature": signer.signature(body),
                "Content-Type": "application/json",
            }
            warm = b"[]"
            client.post(  # the key fetch is not what is measured
                f"http://{HOST}:{port}{ALERT_PATH}",
                content=warm,
                headers=headers | {"Github-Public-Key-Signature": signer.signature(warm)},
            )
            timings: dict[str, Any] = {"body_bytes": len(body)}
            for phase in ("first_s", "redelivery_s"):
                started = time.perf_counter()
                response = client.post(f"http://{HOST}:{port}{ALERT_PATH}", content=body, headers=headers)
                timings[phase] = round(time.perf_counter() - started, 3)
                labels = [entry["label"] for entry in response.json()]
                if response.status_code != 200 or labels.count("true_positive") != count:
                    raise RuntimeError(f"{phase}: {response.status_code}, {labels.count('true_positive')} TP")
    result = timings | counts(engine)
    engine.dispose()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1, help="repeats per backend and way (max 5)")
    parser.add_argument("--only", choices=["sqlite", "postgres"], action="append")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SOUNDPIECE_TEST_POSTGRES_URL"),
        help="default: $SOUNDPIECE_TEST_POSTGRES_URL, else a private cluster for the run (fsync off)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 5))
    secret_key = Fernet.generate_key().decode()
    figures: dict[str, Any] = {"keys": args.keys, "rounds": rounds, "load_average": os.getloadavg()[0]}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if "postgres" in (args.only or ["postgres"]) and not args.postgres_url:
            args.postgres_url = stack.enter_context(PrivatePostgres()).create_database("bench")
        for backend in args.only or ["sqlite", "postgres"]:
            runs: dict[str, list[dict[str, Any]]] = {"in_process": [], "endpoint": []}
            for _ in range(rounds):
                with database(backend, tmp, args.postgres_url) as url:
                    runs["in_process"].append(in_process(url, secret_key, args.keys))
                with database(backend, tmp, args.postgres_url) as url:
                    runs["endpoint"].append(through_endpoint(url, secret_key, args.keys, tmp))
            for way, results in runs.items():
                for result in results:
                    print(f"{backend:8} {way:10} {json.dumps(result)}", file=sys.stderr)
                figures[f"{backend}_{way}"] = {
                    phase: statistics.median(r[phase] for r in results)
                    for phase in ("first_s", "redelivery_s")
                } | {"checked": results[-1]}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
