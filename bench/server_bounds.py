#!/usr/bin/env python
"""What the connection bounds cost (not a test): uvicorn's httptools protocol against ours.

Serves one bare Starlette endpoint twice on 127.0.0.1, one worker each: with uvicorn's stock
``HttpToolsProtocol`` and with ``BoundedHttpToolsProtocol`` (``serve``'s, default limits), and
drives them in turns with ``wrk`` (keep-alive connections, GitHub-like request headers), so that
both see the same machine load. Reported per round and as medians: requests/s, and the server's
CPU time per request (from /proc, so other load on the machine disturbs it less than throughput).

Usage: .venv/bin/python bench/server_bounds.py [--rounds 5] [--seconds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
HEADERS = {  # what a GitHub delivery carries, roughly
    "User-Agent": "GitHub-Hookshot/abc1234",
    "Accept": "*/*",
    "Content-Type": "application/json",
    "Github-Public-Key-Identifier": "a" * 64,
    "Github-Public-Key-Signature": "MEUCIQ" + "b" * 90,
    "X-Forwarded-For": "192.0.2.1",
}


def app():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def healthz(_request):  # type: ignore[no-untyped-def]
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/healthz", healthz)])


def serve(kind: str, port: int) -> None:
    import uvicorn

    from partner_endpoint.server.protocol import BoundedConfig, ConnectionLimits
    from partner_endpoint.settings import Settings

    common = {"factory": True, "host": HOST, "port": port, "log_level": "warning", "access_log": False}
    target = "bench.server_bounds:app"
    if kind == "stock":
        config = uvicorn.Config(target, http="httptools", **common)
    else:
        config = BoundedConfig(target, limits=ConnectionLimits.from_settings(Settings()), **common)
    uvicorn.Server(config).run()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(kind: str) -> Iterator[tuple[int, int]]:
    port = free_port()
    command = [sys.executable, "-m", "bench.server_bounds", "--serve", kind, "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wrk(port: int, seconds: int, connections: int) -> tuple[float, int]:
    """Requests/s and the number of requests."""
    headers = [arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *headers, f"http://{HOST}:{port}/healthz"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    assert rate and count, out
    return float(rate.group(1)), int(count.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve", choices=["stock", "bounded"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    seconds = max(1, min(args.seconds, 30))
    rates: dict[str, list[float]] = {"stock": [], "bounded": []}
    cpu_us: dict[str, list[float]] = {"stock": [], "bounded": []}
    with server("stock") as stock, server("bounded") as bounded:
        for port, _pid in (stock, bounded):
            wrk(port, 1, args.connections)  # warm-up
        for round_ in range(1, max(1, args.rounds) + 1):
            for kind, (port, pid) in (("stock", stock), ("bounded", bounded)):
                before = cpu_seconds(pid)
                rate, count = wrk(port, seconds, args.connections)
                rates[kind].append(rate)
                cpu_us[kind].append((cpu_seconds(pid) - before) / count * 1e6)
            print(
                f"round {round_}: "
                + ", ".join(f"{k} {rates[k][-1]:,.0f}/s {cpu_us[k][-1]:.1f} µs CPU/request" for k in rates),
                flush=True,
            )
    figures = {
        "stock_per_s": statistics.median(rates["stock"]),
        "bounded_per_s": statistics.median(rates["bounded"]),
        "stock_cpu_us_per_request": round(statistics.median(cpu_us["stock"]), 1),
        "bounded_cpu_us_per_request": round(statistics.median(cpu_us["bounded"]), 1),
    }
    figures["throughput_bounded_over_stock"] = round(figures["bounded_per_s"] / figures["stock_per_s"], 3)
    figures["cpu_bounded_over_stock"] = round(
        figures["bounded_cpu_us_per_request"] / figures["stock_cpu_us_per_request"], 3
    )
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
