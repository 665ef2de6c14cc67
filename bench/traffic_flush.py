#!/usr/bin/env python
"""One flush of per-key traffic (not a test): how long the background write of a busy window takes,
and what the window costs in memory.

A window is what one process counted between two flushes: ``--keys`` keys (default 10,000), each
used from ``--addresses`` client addresses (default 10) within one minute, counted by the real
:class:`~partner_endpoint.api.traffic.TrafficRecorder` (its memory measured with tracemalloc), then
written by :meth:`~partner_endpoint.services.traffic.TrafficService.write` in one transaction:
per-minute rows, per-hour-and-address rows, each key's last use. The first flush inserts; the
next ones add to the same rows (the steady state of a busy minute). Measured on SQLite and on
PostgreSQL (a schema of its own on ``--postgres-url``, or a private cluster started for the run).
Target (issue 16): one flush under 1 s on both. Medians of ``--rounds`` flushes.
Usage: .venv/bin/python bench/traffic_flush.py [--keys 10000] [--addresses 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts the repository root on sys.path, for tests.support)
from alert_batch import database, issue_keys
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from partner_endpoint.api.traffic import Snapshot, TrafficRecorder
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.services.traffic import TrafficService
from partner_endpoint.store.db import make_engine, read_transaction
from partner_endpoint.store.models import api_keys, key_traffic_hours
from partner_endpoint.store.secretbox import SecretBox
from tests.support.postgres_cluster import PrivatePostgres

TARGET_S = 1.0


def window(key_ids: list[int], addresses: int) -> tuple[Snapshot, int]:
    """One window of counts, and the bytes the recorder held for it (tracemalloc)."""
    recorder = TrafficRecorder(SYSTEM_CLOCK, Metrics(), max_pairs=len(key_ids) * addresses)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key_id in key_ids:
        for a in range(addresses):
            recorder.count(key_id, f"198.51.{a}.{key_id % 250}")
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return recorder.take(), held


def measure(backend: str, url: str, keys: int, addresses: int, rounds: int) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        issue_keys(engine, SecretBox([Fernet.generate_key().decode()]), keys)
        with read_transaction(engine) as conn:
            key_ids = [int(k) for k in conn.execute(select(api_keys.c.id).order_by(api_keys.c.id)).scalars()]
        service = TrafficService(
            engine,
            SYSTEM_CLOCK,
            sender="s@x.test",
            minutes_kept=timedelta(days=1),
            hours_kept=timedelta(days=90),
        )
        times, held = [], 0
        for _ in range(rounds):
            snapshot, held = window(key_ids, addresses)
            started = time.perf_counter()
            service.write(snapshot)
            times.append(time.perf_counter() - started)
        with read_transaction(engine) as conn:
            rows = conn.execute(select(func.count()).select_from(key_traffic_hours)).scalar_one()
            total = conn.execute(select(func.sum(key_traffic_hours.c.requests))).scalar_one()
        assert total == keys * addresses * rounds, (total, keys, addresses, rounds)  # exact
        return {
            "backend": backend,
            "cells": keys * addresses,
            "flush_s": [round(t, 3) for t in times],
            "first_flush_s": round(times[0], 3),
            "median_flush_s": round(statistics.median(times), 3),
            "window_memory_mb": round(held / 2**20, 1),
            "hour_rows": rows,
            "target_met": statistics.median(times) < TARGET_S and times[0] < TARGET_S,
        }
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--addresses", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--postgres-url", help="a server to use (default: a private cluster for the run)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    results = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="traffic-flush-")))
        postgres_url = args.postgres_url
        for backend in args.only or ["sqlite", "postgres"]:
            if backend == "postgres" and postgres_url is None:
                cluster = stack.enter_context(PrivatePostgres())
                postgres_url = cluster.url
            url = stack.enter_context(database(backend, tmp, postgres_url or ""))
            print(f"{backend}: {args.keys} keys x {args.addresses} addresses", file=sys.stderr)
            results.append(measure(backend, url, args.keys, args.addresses, args.rounds))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0 if all(r["target_met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
