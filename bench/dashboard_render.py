#!/usr/bin/env python
"""Dashboard page render time with 1,000 keys on one account and 90 days of traffic (not a test).

Starts ``soundpiece-partner serve`` (one worker, loopback only) on a fresh SQLite database (or a
PostgreSQL database you name), fills one account with ``--keys`` keys (a third used recently, ten
reported leaked; each of those with ``--traffic-days`` of hourly rows and a day of minutes, the
measured leaked key from ten addresses), signs a session in, and requests each page in turn,
round-robin, with one keep-alive client: so every page sees the same machine noise. Reports
p50/p99 per page and the p50 against two baselines served by the same process: ``/healthz`` (a
database ping) and the sign-in page (a template, no query). Bounded: ``--requests`` per page, then it stops.

Usage: .venv/bin/python bench/dashboard_render.py [--keys 1000] [--requests 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from common import BENCH_ROOT, fmt_ratio, log, markdown_table, ratio, write_json
from cryptography.fernet import Fernet
from endpoint_load import BIN, HOST, free_port, process
from sqlalchemy import Connection, update

import rules
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.services.sign_in import new_token
from partner_endpoint.store import sessions
from partner_endpoint.store.db import make_engine, stage, write_transaction
from partner_endpoint.store.leaks import Sighting, record_batch
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.models import api_keys
from partner_endpoint.store.secretbox import SecretBox
from partner_endpoint.store.traffic import epoch_hour, epoch_minute
from tests.support.partner import add_account, add_key


def seed_traffic(conn: Connection, key_ids: list[int], busy: int, days: int, now: datetime) -> int:
    """``days`` of hourly rows for every key in ``key_ids`` from one address, and for ``busy`` from
    ten; a day of minutes for each. Written as the flush writes them; returns the hour rows."""
    hour_now, minute_now = epoch_hour(now), epoch_minute(now)
    hours = [
        (key_id, hour, f"198.51.100.{a}", 60, 1, hour * 3600.0, hour * 3600.0 + 3599)
        for key_id in key_ids
        for a in range(10 if key_id == busy else 1)
        for hour in range(hour_now - days * 24, hour_now + 1)
    ]
    minutes = [
        (key_id, minute, 1, 0) for key_id in key_ids for minute in range(minute_now - 1440, minute_now + 1)
    ]
    columns = (("key_id", "int4"), ("hour", "int4"), ("address", "text"), ("requests", "int4"))
    columns += (("refused", "int4"), ("first_at", "float8"), ("last_at", "float8"))
    stage(conn, "seed_hours", columns, hours)
    conn.exec_driver_sql("INSERT INTO key_traffic_hours SELECT * FROM seed_hours")
    columns = (("key_id", "int4"), ("minute", "int4"), ("requests", "int4"), ("refused", "int4"))
    stage(conn, "seed_minutes", columns, minutes)
    conn.exec_driver_sql("INSERT INTO key_traffic_minutes SELECT * FROM seed_minutes")
    return len(hours)


def seed(database_url: str, secret_key: str, count: int, days: int) -> tuple[str, int, int]:
    """One account with ``count`` keys; returns a session token, a leaked key's id and a used key's."""
    engine = make_engine(database_url)
    migrate(engine)
    box = SecretBox([secret_key])
    now = SYSTEM_CLOCK.now()
    labels = ("web", "worker", "batch", "ci", "mobile")
    with write_transaction(engine) as conn:
        account = add_account(conn, "owner@example.com", ["203.0.113.0/24"], now)
        made = [
            add_key(conn, box, account, f"{labels[i % 5]}-{i:04d}", now - timedelta(minutes=count - i))
            for i in range(count)
        ]
        for i, new in enumerate(made[::3]):
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id == new.key_id)
                .values(last_used_at=now - timedelta(minutes=i % 90))
            )
        leaked = made[-10:]
        record_batch(
            conn,
            [
                Sighting(
                    rules.identity(k.api_key),
                    "soundpiece_api_key",
                    f"https://github.com/o/r/{n}",
                    "content",
                    f"l{n}",
                )
                for n, k in enumerate(leaked)
            ],
            policy="flag",
            now=now,
        )
        used = sorted({k.key_id for k in made[::3] + leaked})
        rows = seed_traffic(conn, used, leaked[0].key_id, days, now)
        log(f"  {rows:,} hourly rows ({days} days) for {len(used)} keys")
        token = new_token()
        sessions.start_session(conn, rules.identity(token), "owner@example.com", account, now)
    if engine.dialect.name == "postgresql":  # what autovacuum does soon after a bulk load
        with write_transaction(engine) as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return token, leaked[0].key_id, made[0].key_id


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300, help="measured requests per page")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--traffic-days", type=int, default=90, help="days of hourly traffic rows to seed")
    parser.add_argument("--database-url", help="default: a fresh SQLite file under a temporary folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    database_url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    secret_key = Fernet.generate_key().decode()
    log(f"seeding {args.keys} keys into {database_url.split('@')[-1]}")
    token, leaked_id, used_id = seed(database_url, secret_key, args.keys, args.traffic_days)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")}
    env.update(
        SOUNDPIECE_DATABASE_URL=database_url,
        SOUNDPIECE_SECRET_KEY=secret_key,
        SOUNDPIECE_MAIL_DIR=str(folder / "outbox"),
        SOUNDPIECE_DASHBOARD_URL=f"http://{HOST}:{port}/dashboard",
        SOUNDPIECE_LOG_LEVEL="WARNING",
    )
    pages = {
        "/healthz (baseline: database ping)": "/healthz",
        "sign-in page (baseline: template only)": "/dashboard/sign-in",
        f"keys page: 50 newest of {args.keys:,}": "/dashboard/keys",
        "keys page: filtered by label": "/dashboard/keys?q=worker-09&order=label",
        "keys page: page 20": "/dashboard/keys?page=20",
        f"a used key's page ({args.traffic_days} days, 1 address)": f"/dashboard/keys/{used_id}",
        f"a leaked key's page ({args.traffic_days} days, 10 addresses)": f"/dashboard/keys/{leaked_id}",
    }
    timings: dict[str, list[float]] = {name: [] for name in pages}
    serve = [str(BIN / "soundpiece-partner"), "serve", "--host", HOST, "--port", str(port)]
    base = f"http://{HOST}:{port}"
    with (
        process(serve, env, port),
        httpx.Client(base_url=base, timeout=30) as anonymous,
        httpx.Client(base_url=base, timeout=30, cookies={"sp_session": token}) as signed_in,
    ):

        def get(path: str) -> httpx.Response:
            client = anonymous if path.startswith("/dashboard/sign-in") else signed_in
            return client.get(path)

        for path in pages.values():
            response = get(path)
            if response.status_code != 200 or ("/keys" in path and "API key" not in response.text):
                raise RuntimeError(f"{path}: {response.status_code}")
        for round_ in range(args.warmup + args.requests):
            for name, path in pages.items():
                started = time.perf_counter()
                get(path).raise_for_status()
                if round_ >= args.warmup:
                    timings[name].append(time.perf_counter() - started)
    baseline = statistics.median(timings["/healthz (baseline: database ping)"])
    rows = []
    results = {}
    for name, values in timings.items():
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        results[name] = {"p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "requests": len(values)}
        rows.append([name, f"{p50 * 1000:.2f} ms", f"{p99 * 1000:.2f} ms", fmt_ratio(ratio(p50, baseline))])
    print(markdown_table(["page", "p50", "p99", "p50 vs /healthz"], rows))
    write_json(
        BENCH_ROOT / "results-dashboard.json",
        {"keys": args.keys, "database": database_url.split(":")[0], "pages": results},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
