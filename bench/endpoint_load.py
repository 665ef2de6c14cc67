#!/usr/bin/env python
"""Load benchmark of the partner endpoint (not a test).

Starts, on 127.0.0.1 only: a key server with a generated P-256 key,
``soundpiece-partner serve --workers 2`` on a fresh SQLite database, and a
bare Starlette app on the same uvicorn setup (the ceiling). It then drives
them with ``wrk`` (a Lua script replaying pre-signed alerts) and reports
requests/s and p50/p99 latency for 1-token and 100-token batches, the time
of one 1,000-token batch, and the raw ECDSA verification rate on one core.

Every run is bounded: ``--seconds`` per phase, a few phases, loopback only.
Usage: .venv/bin/python bench/endpoint_load.py [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts the repository root on sys.path, for tests.support)
import httpx
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import make_url

import rules
from partner_endpoint.store.db import make_engine, write_transaction
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.secretbox import SecretBox
from tests.support.github import ALERT_PATH, KeyServer, Signer, alert_body, post_alert
from tests.support.partner import Minted, add_account, add_key
from tests.support.processes import free_port
from tests.support.services import service_env

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def alerts(request):
    await request.body()
    return JSONResponse([])

async def whoami(request):
    return JSONResponse({"account_id": 1, "key_id": 1, "label": "k"})

app = Starlette(routes=[Route("/v1/secret-scanning/github", alerts, methods=["POST"]),
                        Route("/v1/whoami", whoami),
                        Route("/healthz", lambda r: JSONResponse({"status": "ok"}))])
"""
WRK_SCRIPT = r"""
local requests = {}
local index = 0
local delay_ms = 0
init = function(args)
  delay_ms = tonumber(args[1] or "0")
  for _, r in ipairs(REQUESTS) do
    table.insert(requests, wrk.format("POST", "/v1/secret-scanning/github",
      {["Content-Type"] = "application/json", ["Github-Public-Key-Identifier"] = r[1],
       ["Github-Public-Key-Signature"] = r[2]}, r[3]))
  end
end
request = function()
  index = index % #requests + 1
  return requests[index]
end
delay = function()
  return delay_ms
end
"""
WRK_DONE = r"""
done = function(summary, latency, requests_)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non_2xx": %d, "socket_errors": %d}\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@contextmanager
def process(
    args: list[str], env: dict[str, str], port: int, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process we started; waits for /healthz, stops it by its pid at the end.

    Its output goes to ``log`` when given (a long soak wants the server's errors), else nowhere.
    """
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(log.open("wb")) if log else subprocess.DEVNULL
        proc = subprocess.Popen(args, env=env, stdout=sink, stderr=sink)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start" + (f"; see {log}" if log else ""))
                time.sleep(0.1)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _listen(port: int, workers: int) -> list[str]:
    return ["--host", HOST, "--port", str(port), "--workers", str(workers)]


def bare_server(tmp: Path, port: int, workers: int) -> list[str]:
    """The command of the ceiling: a bare Starlette app (``BARE_APP``) on the same uvicorn setup."""
    (tmp / "bare_app.py").write_text(BARE_APP)
    quiet = ["--no-access-log", "--log-level", "warning"]
    return [str(BIN / "uvicorn"), "bare_app:app", "--app-dir", str(tmp), *_listen(port, workers), *quiet]


def serve_command(port: int, workers: int) -> list[str]:
    return [str(BIN / "soundpiece-partner"), "serve", *_listen(port, workers)]


def issue_bench_keys(database_url: str, count: int) -> tuple[str, list[Minted]]:
    """Migrate the (empty) database and issue ``count`` keys to one account; returns the Fernet key too."""
    secret_key = Fernet.generate_key().decode()
    engine = make_engine(database_url)
    migrate(engine)
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        account = add_account(conn, "bench@example.com", [], now)
        box = SecretBox([secret_key])
        issued = [add_key(conn, box, account, f"k{i}", now) for i in range(count)]
    engine.dispose()
    return secret_key, issued


def write_wrk_script(path: Path, signer: Signer, bodies: list[bytes]) -> None:
    entries = ",\n".join(
        f'{{"{signer.key_id}", "{signer.signature(b)}", [==[{b.decode()}]==]}}' for b in bodies
    )
    path.write_text(f"REQUESTS = {{\n{entries}\n}}\n{WRK_SCRIPT}{WRK_DONE}")


def run_wrk(
    port: int,
    script: Path,
    seconds: int,
    connections: int,
    rate: float | None = None,
    path: str = ALERT_PATH,
) -> dict[str, float]:
    """Closed loop at full speed, or paced near ``rate`` requests/s.

    Pacing is wrk's per-connection ``delay()`` after each response, so the achieved rate is a little
    below ``rate``; it is what ``requests_per_s`` reports.
    """
    pacing = [str(connections * 1000 / rate)] if rate else []
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://{HOST}:{port}{path}",
            *(["--", *pacing] if pacing else []),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    return {
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["socket_errors"],
    }


def ecdsa_verify_rate(seconds: float = 1.0) -> float:
    """Verifications a second in this one thread (one core)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public, body = key.public_key(), alert_body(rules.API_KEY.mint())
    signature = key.sign(body, ec.ECDSA(hashes.SHA256()))
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(200):
            public.verify(signature, body, ec.ECDSA(hashes.SHA256()))
        count += 200
    return round(count / elapsed)


def load_arguments(description: str) -> argparse.Namespace:
    """The options every wrk benchmark here takes; ``seconds`` comes back bounded to 1..30."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=description, formatter_class=formatter)
    parser.add_argument("--seconds", type=int, default=5, help="duration of each wrk phase (max 30)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--database-url",
        help="an empty database to use instead of a fresh SQLite file (e.g. a PostgreSQL schema on loopback)",
    )
    args = parser.parse_args()
    args.seconds = max(1, min(args.seconds, 30))
    return args


def wrk_missing() -> bool:
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return True
    return False


def report(figures: dict[str, Any], path: Path | None) -> None:
    """Print the figures as JSON, and write them to ``path`` too when given."""
    print(json.dumps(figures, indent=2))
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n")


def main() -> int:
    args = load_arguments(__doc__ or "")
    seconds = args.seconds
    if wrk_missing():
        return 2

    signer = Signer()
    with tempfile.TemporaryDirectory() as tmp_name, KeyServer(signer.document) as key_server:
        tmp = Path(tmp_name)
        keys_url = key_server.url
        database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
        secret_key, issued = issue_bench_keys(database_url, 20)
        env = service_env(
            database_url=database_url,
            secret_key=secret_key,
            github_keys_url=keys_url,
            mail_dir=str(tmp / "outbox"),
            log_level="WARNING",
        )
        one = tmp / "one.lua"
        write_wrk_script(one, signer, [alert_body(rules.API_KEY.mint()) for _ in range(2000)])
        hundred = tmp / "hundred.lua"
        write_wrk_script(
            hundred, signer, [alert_body(*(rules.API_KEY.mint() for _ in range(100))) for _ in range(200)]
        )

        figures: dict[str, Any] = {
            "database": make_url(database_url).get_backend_name(),
            "workers": args.workers,
            "connections": args.connections,
            "seconds": seconds,
        }
        figures["ecdsa_verify_per_s_one_core"] = ecdsa_verify_rate()

        bare_port = free_port()
        with process(bare_server(tmp, bare_port, args.workers), env, bare_port):
            run_wrk(bare_port, one, 1, args.connections)  # warm-up
            figures["bare_starlette_max"] = run_wrk(bare_port, one, seconds, args.connections)

        port = free_port()
        with process(serve_command(port, args.workers), env, port):
            run_wrk(port, one, 1, args.connections)  # warm-up: both workers fetch the keys
            figures["alerts_1_token_max"] = run_wrk(port, one, seconds, args.connections)
            # 64 paced connections, aimed 10 % above 1,000/s to make up for the time each request takes.
            figures["alerts_1_token_paced_1000"] = run_wrk(port, one, seconds, 64, rate=1100)
            figures["alerts_100_tokens_max"] = run_wrk(port, hundred, seconds, args.connections)
            tokens = [k.api_key for k in issued] + [rules.API_KEY.mint() for _ in range(980)]
            body = alert_body(*tokens)
            started = time.perf_counter()
            with httpx.Client(timeout=30) as client:
                response = post_alert(client, signer, body, base_url=f"http://{HOST}:{port}")
            figures["batch_1000_tokens_s"] = round(time.perf_counter() - started, 3)
            labels = [e["label"] for e in response.json()]
            figures["batch_1000_true_positives"] = labels.count("true_positive")
            assert response.status_code == 200 and len(labels) == 1000

    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
