"""Test helpers for the partner endpoint (plain functions and classes; fixtures are in conftest)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, func, select
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # StarletteDeprecationWarning: it would like httpx2; httpx is installed
    from starlette.testclient import TestClient

from partner_endpoint.store.db import read_transaction
from partner_endpoint.store.models import api_keys, leak_events, mail_outbox

ALERT_PATH = "/v1/secret-scanning/github"


def start_client(app: Starlette, client: tuple[str, int] = ("127.0.0.1", 50000)) -> TestClient:
    """A TestClient whose peer address is ``client`` (the default is not an IP address)."""
    return TestClient(app, client=client)


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything an alert may change, to assert that a rejected one changed nothing."""
    with read_transaction(engine) as conn:
        return {
            "statuses": sorted(conn.execute(select(api_keys.c.id, api_keys.c.status)).all()),
            "leaks": conn.execute(select(func.count()).select_from(leak_events)).scalar_one(),
            "mails": conn.execute(select(func.count()).select_from(mail_outbox)).scalar_one(),
        }


def rows(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with read_transaction(engine) as conn:
        return [
            dict(r)
            for r in conn.execute(select(table).order_by(table.c[next(iter(table.c.keys()))])).mappings()
        ]


@dataclass
class Clock:
    """Wall clock and monotonic clock that tests move by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    mono: float = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


class Signer:
    """Plays GitHub: a P-256 key pair, its key document, signed requests."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = uuid.uuid4().hex * 2
        pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.document: dict[str, Any] = {
            "public_keys": [{"key_identifier": self.key_id, "key": pem.decode(), "is_current": True}]
        }

    def signature(self, body: bytes) -> str:
        return base64.b64encode(self.private_key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        return {
            "Github-Public-Key-Identifier": self.key_id,
            "Github-Public-Key-Signature": self.signature(body),
            "Content-Type": "application/json",
        }


class KeyServer:
    """A real HTTP server on loopback serving a key document; can be made to fail."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.status = 200
        self.requests = 0
        self.authorizations: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                server.authorizations.append(self.headers.get("Authorization"))
                body = json.dumps(server.document).encode() if server.status == 200 else b"down"
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/meta/public_keys/secret_scanning"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def alert_body(
    *tokens: str, url: str = "https://github.com/o/r/blob/main/.env", source: str = "content"
) -> bytes:
    """A GitHub alert batch, one entry per token, typed by prefix."""
    return json.dumps(
        [
            {
                "token": t,
                "type": "soundpiece_webhook_secret" if t.startswith("whsec_") else "soundpiece_api_key",
                "url": url,
                "source": source,
            }
            for t in tokens
        ],
        separators=(",", ":"),
    ).encode()


def post_alert(client: TestClient, signer: Signer, body: bytes, **kwargs: Any) -> Any:
    return client.post(ALERT_PATH, content=body, headers=signer.headers(body), **kwargs)
