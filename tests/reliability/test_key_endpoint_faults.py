"""GitHub's key endpoint misbehaving: cached keys keep working, nothing cached is 503, refetches stay rare.

The key server is a real HTTP server on loopback that is switched between
behaviours (down, slow, trickling, endless, garbage, wrong keys, 5xx, 429)
while signed alerts go through the whole app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import Engine

import rules
from partner_endpoint.app import create_app
from partner_endpoint.settings import Settings
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.secretbox import SecretBox
from tests.support.github import ALERT_PATH, Signer, alert_body
from tests.support.partner import Clock, add_account, add_key, snapshot
from tests.support.services import ON_SQLITE

pytestmark = [pytest.mark.anyio, ON_SQLITE]
"""On SQLite only: what is tested is the key server's side; the database is where the app keeps keys."""
FETCH_TIMEOUT = 5.0
"""The service's limit on one fetch of the key document: long enough that a fetch of a working key
server succeeds on a loaded machine, so each hanging mode costs this long."""
SHORT_FETCH_TIMEOUT = 0.5
"""For tests in which no fetch may succeed: the timeout fires sooner, and nothing depends on its length."""
GITHUB_TIMEOUT = 30
"""Seconds GitHub waits for an answer: the hang guard of these tests, never a speed limit."""
HANGING = {"slow", "trickle", "endless"}
"""Modes in which the key server would keep a fetch waiting far longer than GITHUB_TIMEOUT."""
PEM_GARBAGE = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PUBLIC KEY-----\n"


def pem_of(public_key: Any) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class SwitchableKeyServer:
    """GitHub's key endpoint on loopback; ``mode`` picks how it answers, ``requests`` counts fetches."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self.mode = "ok"
        self.document: Any = signer.document
        self.requests = 0
        self.answered = 0
        """Answers sent to the end; a hanging mode never finishes one before ``release``/``close``."""
        self.bytes_sent = 0
        self.stop = threading.Event()
        self.release = threading.Event()
        """Ends the wait of the ``slow`` mode (which then answers normally)."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests += 1
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.answer(self)
                    server.answered += 1

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/meta/public_keys/secret_scanning"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        if mode == "hang_up":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "slow":  # no answer at all until released
            self.release.wait()
        if mode == "trickle":  # headers at once, then a byte at a time: each read is within the timeout
            self._head(handler, 200, length=10_000)
            for _ in range(10_000):
                if self.stop.wait(0.1):
                    raise ConnectionResetError("closed before the end")  # not an answer
                self._write(handler, b" ")
            return
        if mode == "endless":  # a chunked body that never ends
            self._head(handler, 200, chunked=True)
            chunk = b"x" * 65536
            while not self.stop.is_set():
                if self.bytes_sent >= 512 * 1024 * 1024:  # read on and on: give up, having proved it
                    return
                self._write(handler, b"%x\r\n%s\r\n" % (len(chunk), chunk))
            raise ConnectionResetError("closed before the end")  # not an answer
        status, body, extra = 200, json.dumps(self.document).encode(), {}
        if mode.startswith("status_"):
            status, body = int(mode.removeprefix("status_")), b'{"message": "no"}'
            if status == 429:
                extra = {"Retry-After": "3600", "X-RateLimit-Remaining": "0"}
        elif mode == "not_json":
            body = b"<html><body>GitHub is having a moment</body></html>"
        elif mode == "nested_json":
            body = b"[" * 100_000 + b"]" * 100_000
        elif mode == "huge_json":  # a valid document padded past any sane size
            body = json.dumps({**self.signer.document, "pad": "x" * (64 * 1024 * 1024)}).encode()
        self._head(handler, status, length=len(body), extra=extra)
        for start in range(0, len(body), 65536):
            if self.stop.is_set():
                return
            self._write(handler, body[start : start + 65536])

    def _head(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        *,
        length: int | None = None,
        chunked: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(length))
        for name, value in (extra or {}).items():
            handler.send_header(name, value)
        handler.end_headers()

    def _write(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        self.bytes_sent += len(data)

    def down(self) -> None:
        """Stop listening: new connections are refused, kept-alive ones are hung up on."""
        self.mode = "hang_up"
        self._httpd.shutdown()
        self._httpd.server_close()

    def close(self) -> None:
        self.stop.set()
        self.release.set()
        self.down()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def key_server(signer: Signer) -> Iterator[SwitchableKeyServer]:
    server = SwitchableKeyServer(signer)
    yield server
    server.close()


@pytest.fixture
def victim(engine: Engine) -> str:
    """An issued API key: a verified alert for it changes state, an unverified one must not."""
    box = SecretBox([Fernet.generate_key().decode()])
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    with write_transaction(engine) as conn:
        account = add_account(conn, "owner@example.com", [], now)
        return add_key(conn, box, account, "production", now).api_key


class Service:
    """The app in-process (``httpx.ASGITransport``) with hand-moved clocks (the refetch limit is shared
    through the database, so it runs on the wall clock)."""

    def __init__(
        self,
        engine: Engine,
        key_server: SwitchableKeyServer,
        signer: Signer,
        tmp: Path,
        fetch_timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.engine, self.signer, self.clock = engine, signer, Clock()
        settings = Settings(
            database_url="sqlite://",
            github_keys_url=key_server.url,
            secret_key=Fernet.generate_key().decode(),
            mail_dir=tmp / "outbox",
            mail_worker=False,
            key_fetch_timeout=fetch_timeout,
            alert_failure_limit=0,  # thousands of unknown identifiers from one client, on purpose
        )
        self.app = create_app(settings, engine=engine, clock=self.clock)
        transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://partner")

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(ALERT_PATH, content=body, headers=headers or self.signer.headers(body))

    async def false_positive(self) -> httpx.Response:
        """A correctly signed alert for an unissued token: 200 needs a usable key, changes nothing."""
        return await self.post(alert_body(rules.API_KEY.mint()))

    async def unknown_key_ids(self, count: int) -> list[httpx.Response]:
        """An attacker's made-up key identifiers, with a plausible signature."""
        body = alert_body(rules.API_KEY.mint())
        signature = self.signer.signature(body)
        return await asyncio.gather(
            *(
                self.post(
                    body,
                    {
                        "Github-Public-Key-Identifier": os.urandom(16).hex(),
                        "Github-Public-Key-Signature": signature,
                    },
                )
                for _ in range(count)
            )
        )


@pytest.fixture
def fetch_timeout() -> float:
    """The service's fetch timeout; a test may parametrize ``fetch_timeout`` to change it."""
    return FETCH_TIMEOUT


@pytest.fixture
async def service(
    engine: Engine, key_server: SwitchableKeyServer, signer: Signer, tmp_path: Path, fetch_timeout: float
) -> AsyncIterator[Service]:
    service = Service(engine, key_server, signer, tmp_path, fetch_timeout)
    async with service.http, service.app.router.lifespan_context(service.app):
        yield service


BROKEN = [
    "hang_up",
    "slow",
    "trickle",
    "endless",
    "not_json",
    "huge_json",
    "nested_json",
    "status_500",
    "status_502",
    "status_429",
    "status_404",
]
BAD_DOCUMENTS: dict[str, Callable[[Signer], Any]] = {
    "null": lambda s: None,
    "array": lambda s: [s.document],
    "keys_not_a_list": lambda s: {"public_keys": {"key_identifier": s.key_id}},
    "entries_wrong_types": lambda s: {
        "public_keys": [
            None,
            "key",
            {"key_identifier": 5, "key": pem_of(s.private_key.public_key())},
            {"key_identifier": s.key_id, "key": ["not", "a", "string"]},
            {"key_identifier": [s.key_id], "key": None},
        ]
    },
    "invalid_pem": lambda s: {"public_keys": [{"key_identifier": s.key_id, "key": PEM_GARBAGE}]},
    "non_ascii_pem": lambda s: {"public_keys": [{"key_identifier": s.key_id, "key": "—ключ—\x00"}]},
    "p384_key": lambda s: {
        "public_keys": [
            {"key_identifier": s.key_id, "key": pem_of(ec.generate_private_key(ec.SECP384R1()).public_key())}
        ]
    },
    "secp256k1_key": lambda s: {
        "public_keys": [
            {"key_identifier": s.key_id, "key": pem_of(ec.generate_private_key(ec.SECP256K1()).public_key())}
        ]
    },
    "rsa_key": lambda s: {
        "public_keys": [
            {
                "key_identifier": s.key_id,
                "key": pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()),
            }
        ]
    },
    "ed25519_key": lambda s: {
        "public_keys": [
            {"key_identifier": s.key_id, "key": pem_of(ed25519.Ed25519PrivateKey.generate().public_key())}
        ]
    },
}


def break_server(key_server: SwitchableKeyServer, mode: str) -> None:
    if mode in BAD_DOCUMENTS:
        key_server.mode = "ok"
        key_server.document = BAD_DOCUMENTS[mode](key_server.signer)
    else:
        key_server.mode = mode


@pytest.mark.parametrize("fetch_timeout", [SHORT_FETCH_TIMEOUT])
@pytest.mark.parametrize("mode", BROKEN + list(BAD_DOCUMENTS))
async def test_nothing_cached_is_503_quickly_and_changes_nothing(
    service: Service, key_server: SwitchableKeyServer, victim: str, mode: str
) -> None:
    break_server(key_server, mode)
    before = snapshot(service.engine)
    body = alert_body(victim)
    response = await asyncio.wait_for(service.post(body), GITHUB_TIMEOUT)
    if mode in HANGING:  # the service gave up on its own: the key server had not finished answering
        assert key_server.answered == 0
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert snapshot(service.engine) == before
    # No second fetch within the interval, however many deliveries arrive.
    assert {r.status_code for r in await service.unknown_key_ids(20)} == {503}
    assert (await service.post(body)).status_code == 503
    assert key_server.requests == 1
    assert snapshot(service.engine) == before


async def test_nothing_cached_and_server_down_is_503(
    service: Service, key_server: SwitchableKeyServer
) -> None:
    key_server.down()
    response = await service.false_positive()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"


@pytest.mark.parametrize("mode", BROKEN + list(BAD_DOCUMENTS))
async def test_cached_keys_keep_working_when_the_key_server_breaks(
    service: Service, key_server: SwitchableKeyServer, victim: str, mode: str
) -> None:
    assert (await service.false_positive()).status_code == 200
    assert key_server.requests == 1
    break_server(key_server, mode)
    service.clock.advance(61)
    # An unknown identifier makes the one allowed refetch, which fails; the cache survives it. Until a
    # document is read again, an unknown identifier may be a rotated-in key: 503, so GitHub retries.
    assert {r.status_code for r in await service.unknown_key_ids(10)} == {503}
    assert key_server.requests == 2
    for _ in range(5):
        assert (await service.false_positive()).status_code == 200
    assert key_server.requests == 2  # cached keys never wait for the key server: it was not asked
    response = await service.post(alert_body(victim))
    assert response.status_code == 200
    assert response.json()[0]["label"] == "true_positive"
    assert key_server.requests == 2


async def test_cached_keys_answer_while_a_refetch_hangs(
    engine: Engine, key_server: SwitchableKeyServer, signer: Signer, tmp_path: Path
) -> None:
    """The refetch is held by the key server (with a fetch timeout as long as GitHub's wait) while a
    request the cache can answer arrives: it is answered before the refetch ends, not queued behind it."""
    service = Service(engine, key_server, signer, tmp_path, fetch_timeout=GITHUB_TIMEOUT)
    async with service.http, service.app.router.lifespan_context(service.app):
        assert (await service.false_positive()).status_code == 200
        key_server.mode = "slow"
        service.clock.advance(61)
        hanging = asyncio.create_task(service.unknown_key_ids(1))

        async def refetch_reached_the_key_server() -> None:
            while key_server.requests < 2:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(refetch_reached_the_key_server(), GITHUB_TIMEOUT)
        assert (await service.false_positive()).status_code == 200
        assert not hanging.done() and key_server.answered == 1  # the refetch is still waiting
        key_server.release.set()
        # The refetch ends with the same document: the made-up identifier is not in it.
        assert [r.status_code for r in await asyncio.wait_for(hanging, GITHUB_TIMEOUT)] == [401]
        assert key_server.answered == 2


async def test_cached_keys_survive_the_key_server_going_down(
    service: Service, key_server: SwitchableKeyServer
) -> None:
    assert (await service.false_positive()).status_code == 200
    key_server.down()
    service.clock.advance(3600)
    assert {r.status_code for r in await service.unknown_key_ids(5)} == {503}
    assert (await service.false_positive()).status_code == 200


async def test_a_key_rotated_in_during_an_outage_is_retried_not_lost(
    service: Service, key_server: SwitchableKeyServer, victim: str
) -> None:
    """GitHub starts signing with a new key while its key document is unreadable to us."""
    assert (await service.false_positive()).status_code == 200
    rotated = Signer()
    service.signer = rotated
    key_server.mode = "status_429"  # the unauthenticated 60/hour limit, say
    service.clock.advance(61)
    body = alert_body(victim)
    before = snapshot(service.engine)
    first = await service.post(body)
    assert first.status_code == 503 and first.headers["Retry-After"] == "60"
    assert snapshot(service.engine) == before
    key_server.mode = "ok"
    key_server.document = {
        "public_keys": key_server.signer.document["public_keys"] + rotated.document["public_keys"]
    }
    service.clock.advance(61)
    retried = await service.post(body)  # GitHub's retry
    assert retried.status_code == 200
    assert retried.json()[0]["label"] == "true_positive"


async def test_a_document_with_one_good_key_among_garbage_is_used(
    service: Service, key_server: SwitchableKeyServer, signer: Signer
) -> None:
    good = signer.document["public_keys"][0]
    key_server.document = {
        "public_keys": [
            *BAD_DOCUMENTS["entries_wrong_types"](signer)["public_keys"],
            {"key_identifier": "other", "key": PEM_GARBAGE},
            {"key_identifier": "p384", "key": BAD_DOCUMENTS["p384_key"](signer)["public_keys"][0]["key"]},
            good,
        ]
    }
    assert (await service.false_positive()).status_code == 200


async def test_unknown_identifiers_refetch_once_per_interval(
    service: Service, key_server: SwitchableKeyServer
) -> None:
    assert (await service.false_positive()).status_code == 200
    for minute in range(1, 4):
        # Each minute: hundreds of made-up identifiers, concurrently and one after another.
        assert {r.status_code for r in await service.unknown_key_ids(200)} == {401}
        for _ in range(50):
            assert (await service.unknown_key_ids(1))[0].status_code == 401
        assert key_server.requests == minute
        service.clock.advance(30)
        assert {r.status_code for r in await service.unknown_key_ids(50)} == {401}
        assert key_server.requests == minute
        service.clock.advance(31)
    assert (await service.false_positive()).status_code == 200


@pytest.mark.parametrize("mode", ["status_500", "status_429", "slow", "not_json"])
async def test_failing_refetches_stay_rate_limited(
    service: Service, key_server: SwitchableKeyServer, mode: str
) -> None:
    break_server(key_server, mode)
    for minute in range(1, 4):
        assert {r.status_code for r in await service.unknown_key_ids(100)} == {503}
        assert key_server.requests == minute
        service.clock.advance(61)
    key_server.mode = "ok"
    key_server.document = key_server.signer.document
    assert (await service.false_positive()).status_code == 200  # recovers on the next allowed fetch
    assert key_server.requests == 4


async def test_endless_key_document_is_cut_off(service: Service, key_server: SwitchableKeyServer) -> None:
    key_server.mode = "endless"
    assert (await service.false_positive()).status_code == 503
    await asyncio.sleep(0.2)
    assert key_server.bytes_sent < 64 * 1024 * 1024  # read up to a cap, not into memory without end


async def test_signature_by_a_cached_key_over_another_identifier_is_refused(
    service: Service, key_server: SwitchableKeyServer, signer: Signer
) -> None:
    """A second published key must not be usable with the first key's signature."""
    other = Signer()
    key_server.document = {"public_keys": signer.document["public_keys"] + other.document["public_keys"]}
    body = alert_body(rules.API_KEY.mint())
    headers = {**signer.headers(body), "Github-Public-Key-Identifier": other.key_id}
    assert (await service.post(body, headers)).status_code == 401
