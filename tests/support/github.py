"""Plays GitHub: a signing key and its public key document, the key endpoint, alert batches."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALERT_PATH = "/v1/secret-scanning/github"


class Signer:
    """A P-256 key pair, its key document (as GitHub publishes it), signed requests."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = uuid.uuid4().hex * 2  # 64 hex digits, like GitHub's identifiers
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
    """GitHub's public key endpoint as a real HTTP server on loopback; ``status`` makes it fail."""

    def __init__(self, document: Any) -> None:
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
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/meta/public_keys/secret_scanning"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> KeyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def post_alert(client: httpx.Client, signer: Signer, body: bytes, base_url: str = "", **kwargs: Any) -> Any:
    """POST a signed alert through ``client`` (a TestClient, or any httpx client with ``base_url``)."""
    return client.post(f"{base_url}{ALERT_PATH}", content=body, headers=signer.headers(body), **kwargs)
