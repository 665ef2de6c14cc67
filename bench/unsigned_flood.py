#!/usr/bin/env python
"""What 40 unsigned alert requests with large bodies cost the server's memory (not a test).

Starts ``soundpiece-partner serve --workers 1`` on 127.0.0.1 (fresh SQLite, a local key server),
warms it up with one signed request, then opens ``--connections`` (40) connections at once. Each
sends an alert request with a made-up key identifier (or GitHub's real one and a wrong signature,
``--known-key``) and streams ``--mebibytes`` (8) of body, chunked or with Content-Length. It reports
the server's resident memory before and its peak meanwhile (sampled every 20 ms), and the answers.
Loopback only, bounded: every connection stops after its body or 20 s.
Usage: .venv/bin/python bench/unsigned_flood.py [--connections 40] [--mebibytes 8] [--chunked] [--known-key]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import common  # noqa: F401  (puts the repository root on sys.path, for tests.support)
import httpx
from cryptography.fernet import Fernet
from endpoint_load import BIN, HOST, process

from tests.support.github import ALERT_PATH, KeyServer, Signer
from tests.support.processes import free_port, status_kb


def flood(port: int, key_id: str, size: int, chunked: bool, answers: list[str]) -> None:
    head = [
        f"POST {ALERT_PATH} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Content-Type: application/json",
        f"Github-Public-Key-Identifier: {key_id}",
        f"Github-Public-Key-Signature: {base64.b64encode(os.urandom(70)).decode()}",  # well-formed, wrong
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}",
    ]
    chunk = b"[" + b" " * (64 * 1024 - 1)
    deadline = time.monotonic() + 20
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        try:
            while sent < size and time.monotonic() < deadline:
                piece = chunk[: size - sent]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
            answer = sock.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
        except OSError as exc:  # the server closed the connection: it had answered, or refused to read
            answer = f"closed after {sent >> 20} MiB ({type(exc).__name__})"
    answers.append(answer)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--mebibytes", type=int, default=8)
    parser.add_argument(
        "--chunked", action="store_true", help="no Content-Length: the limit must hold while reading"
    )
    parser.add_argument(
        "--known-key", action="store_true", help="GitHub's real key identifier, a wrong signature"
    )
    args = parser.parse_args()
    connections, size = min(args.connections, 200), min(args.mebibytes, 64) << 20
    signer = Signer()
    with tempfile.TemporaryDirectory() as tmp_name, KeyServer(signer.document) as key_server:
        keys_url = key_server.url
        tmp = Path(tmp_name)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")},
            "SOUNDPIECE_DATABASE_URL": f"sqlite:///{tmp / 'flood.db'}",
            "SOUNDPIECE_SECRET_KEY": Fernet.generate_key().decode(),
            "SOUNDPIECE_GITHUB_KEYS_URL": keys_url,
            "SOUNDPIECE_MAIL_DIR": str(tmp / "outbox"),
            "SOUNDPIECE_LOG_LEVEL": "ERROR",
            "SOUNDPIECE_ALERT_FAILURE_LIMIT": "0",  # the memory of the reads, not the limit, is measured
        }
        port = free_port()
        command = [str(BIN / "soundpiece-partner"), "serve", "--host", HOST, "--port", str(port)]
        with process(command, env, port) as server:
            body = b"[]"
            headers = {
                "Github-Public-Key-Identifier": signer.key_id,
                "Github-Public-Key-Signature": signer.signature(body),
            }
            httpx.post(f"http://{HOST}:{port}{ALERT_PATH}", content=body, headers=headers)  # fetches the keys
            time.sleep(0.5)
            before = status_kb(server.pid, b"VmRSS")
            peak, answers = before, []
            key_id = signer.key_id if args.known_key else "made-up-" + os.urandom(8).hex()
            threads = [
                threading.Thread(target=flood, args=(port, key_id, size, args.chunked, answers))
                for _ in range(connections)
            ]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                peak = max(peak, status_kb(server.pid, b"VmRSS"))
                time.sleep(0.02)
            figures = {
                "connections": connections,
                "body_mib": size >> 20,
                "framing": "chunked" if args.chunked else "content-length",
                "key_identifier": "known, wrong signature" if args.known_key else "made up",
                "rss_before_mib": round(before / 1024, 1),
                "rss_peak_mib": round(peak / 1024, 1),
                "growth_mib": round((peak - before) / 1024, 1),
                "answers": sorted(set(answers)),
            }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
