"""Hostile input at volume: no 5xx, no change without a valid signature, no login without a real key.

More than 10,000 generated requests (hypothesis) go through the whole app
in-process (raw ASGI messages, so any header bytes can be sent): noise with garbled, duplicated and
oversized headers, garbage signed correctly, bodies over the limit (declared,
undeclared, lying), and ``Authorization`` / ``X-Forwarded-For`` against
``/v1/whoami``. The tables are compared before and after each test, and the
process's memory is compared before and after a large batch.
``tests/partner_endpoint/test_hostile_input.py`` holds the small, quick version.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

import rules
from partner_endpoint.app import create_app
from partner_endpoint.settings import Settings
from partner_endpoint.store import api_keys
from partner_endpoint.store.db import make_engine, write_transaction
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.secretbox import SecretBox
from tests.support.github import ALERT_PATH, KeyServer, Signer, alert_body
from tests.support.invalid_text import invalid_text
from tests.support.partner import add_account, add_key, snapshot

pytestmark = pytest.mark.slow
LIMIT = 64 * 1024
"""Body limit for these tests (the default is 2 MiB); one test checks the default itself."""
ALLOWLIST = "10.0.0.0/8"
PROXY_HEADER = "X-Forwarded-For"


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


INSIDE = ("127.0.0.1", 50000)
OUTSIDE = ("203.0.113.7", 50000)
"""A peer that is not a trusted proxy: its X-Forwarded-For is ignored."""
Headers = Mapping[str, str] | Iterable[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def asgi_request(
    app: Any, method: str, path: str, headers: Headers, body: bytes | Iterable[bytes], client: tuple[str, int]
) -> Reply:
    """One request straight through ASGI, as a server would pass it: names lowercased, bytes untouched.

    ``body`` as an iterable arrives in several messages without a Content-Length (chunked).
    A 5xx raised by the app propagates (Starlette re-raises after answering 500).
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    raw = [
        (n.encode("latin-1") if isinstance(n, str) else n, v.encode("latin-1") if isinstance(v, str) else v)
        for n, v in pairs
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in raw],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }
    parts = iter([body] if isinstance(body, bytes) else body)
    pending = next(parts, b"")
    finished = False

    async def receive() -> dict[str, Any]:
        nonlocal pending, finished
        if finished:
            await asyncio.sleep(0)
            return {"type": "http.disconnect"}
        chunk, pending = pending, next(parts, None)
        finished = pending is None
        return {"type": "http.request", "body": chunk, "more_body": not finished}

    status, answer = 0, bytearray()

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            answer.extend(message.get("body", b""))

    await app(scope, receive, send)
    return Reply(status, bytes(answer))


@dataclass
class Service:
    """The app in-process on its own event loop, with an issued, an allowlisted and a revoked key."""

    engine: Engine
    signer: Signer
    loop: asyncio.AbstractEventLoop
    app: Any
    active: str
    allowlisted: str
    revoked: str

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def post(
        self, body: bytes | Iterable[bytes], headers: Headers, client: tuple[str, int] = INSIDE
    ) -> Reply:
        return await asgi_request(self.app, "POST", ALERT_PATH, headers, body, client)

    async def get(self, path: str, headers: Headers, client: tuple[str, int] = INSIDE) -> Reply:
        return await asgi_request(self.app, "GET", path, headers, b"", client)


@pytest.fixture(scope="module")
def service(signer: Signer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("hostile")
    key_server = KeyServer(signer.document)
    engine = make_engine(f"sqlite:///{tmp / 'store.db'}")
    migrate(engine)
    secret = Fernet.generate_key().decode()
    box, now = SecretBox([secret]), datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    with write_transaction(engine) as conn:
        open_account = add_account(conn, "open@example.com", [], now)
        fenced_account = add_account(conn, "fenced@example.com", [ALLOWLIST], now)
        active = add_key(conn, box, open_account, "active", now).api_key
        allowlisted = add_key(conn, box, fenced_account, "fenced", now).api_key
        revoked_key = add_key(conn, box, open_account, "revoked", now)
        api_keys.revoke(conn, revoked_key.key_id, now)
    app = create_app(
        Settings(
            database_url="sqlite://",
            github_keys_url=key_server.url,
            secret_key=secret,
            mail_dir=tmp / "outbox",
            mail_worker=False,
            max_body_bytes=LIMIT,
            trusted_proxy_header=PROXY_HEADER,
            alert_failure_limit=0,  # thousands of failed alerts from one client: tested on its own
            auth_failure_limit=0,  # thousands of failures from a few addresses: 401, never 429, here
            key_change_delay=24 * 3600,  # the log is read once, below: keys are then served from the cache
        ),
        engine=engine,
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(app.state.key_directory.sync())
    yield Service(engine, signer, loop, app, active, allowlisted, revoked_key.api_key)
    loop.close()
    engine.dispose()
    key_server.close()


@pytest.fixture
def unchanged(service: Service) -> Iterator[None]:
    """The key store, leak log and outbox are the same after the test as before it."""
    before = snapshot(service.engine)
    yield
    assert snapshot(service.engine) == before


# --- strategies ----------------------------------------------------------------------------------

SIGNATURE_NAMES = [
    "Github-Public-Key-Signature",
    "github-public-key-signature",
    "GITHUB-PUBLIC-KEY-SIGNATURE",
]
KEY_ID_NAMES = [
    "Github-Public-Key-Identifier",
    "github-public-key-identifier",
    "GITHUB-PUBLIC-KEY-IDENTIFIER",
]
OTHER_NAMES = [
    "Content-Type",
    "Content-Length",
    "Transfer-Encoding",
    "Authorization",
    "X-Forwarded-For",
    "Host",
]
latin1 = st.binary(max_size=200)
oversized = st.integers(1_000, 70_000).map(lambda n: b"A" * n)
header_values = latin1 | st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")) | oversized
header_names = st.sampled_from(SIGNATURE_NAMES + KEY_ID_NAMES + OTHER_NAMES).map(str.encode) | st.binary(
    min_size=1, max_size=40
).filter(lambda b: b":" not in b)
random_signatures = st.one_of(
    st.binary(max_size=140).map(base64.b64encode),
    st.binary(min_size=60, max_size=80).map(lambda b: base64.b64encode(b"\x30\x44\x02\x20" + b)),
    latin1,
    st.just(b""),
    oversized,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=50)
    | st.text(st.characters(codec="utf-8"), max_size=20)
    | invalid_text(20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
tokens = st.one_of(
    st.builds(rules.API_KEY.mint),
    st.builds(rules.WEBHOOK_SECRET.mint),
    st.text(max_size=60),
    st.text(st.characters(codec="utf-8"), max_size=60),
    invalid_text(),
    st.builds(lambda t, bad: t + bad, st.builds(rules.API_KEY.mint), invalid_text(3)),
    st.integers(10_000, 60_000).map(lambda n: "spk_" + "A" * n),  # huge token strings
    st.builds(lambda t, i: t[:i] + "\x00" + t[i:], st.builds(rules.API_KEY.mint), st.integers(0, 42)),
    json_values,
)
alerts = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "token": tokens,
            "type": st.sampled_from(["soundpiece_api_key", "soundpiece_webhook_secret"]) | json_values,
            "url": st.text(max_size=40) | invalid_text() | json_values,
            "source": st.sampled_from(["commit", "Content", "npm"]) | invalid_text(20) | json_values,
            "extra": json_values,
        },
    ),
    max_size=6,
)
garbage_bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    alerts.map(lambda v: json.dumps(v).encode()),
    alerts.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n),  # nesting deep enough to exhaust recursion
    st.builds(
        lambda b, i: b[:i] + b"\x00" + b[i:], alerts.map(lambda v: json.dumps(v).encode()), st.integers(0, 50)
    ),
    st.builds(lambda b: b + b"\n", st.builds(lambda: alert_body(rules.API_KEY.mint()))),
)


# --- the alert endpoint ----------------------------------------------------------------------------


@fuzz(4500)
@given(
    body=st.binary(max_size=3000) | garbage_bodies,
    key_id=st.none() | st.sampled_from(["", " "]).map(str.encode) | header_values | st.just(b"signer"),
    signature=st.none() | random_signatures,
    extra=st.lists(st.tuples(header_names, header_values), max_size=6),
    duplicate=st.booleans(),
)
def test_unsigned_noise_is_refused_and_changes_nothing(
    service: Service,
    unchanged: None,
    body: bytes,
    key_id: bytes | None,
    signature: bytes | None,
    extra,
    duplicate,
) -> None:
    headers: list[tuple[bytes, bytes]] = []
    if key_id is not None:
        headers.append(
            (
                b"Github-Public-Key-Identifier",
                service.signer.key_id.encode() if key_id == b"signer" else key_id,
            )
        )
    if signature is not None:
        headers.append((b"Github-Public-Key-Signature", signature))
    if duplicate:  # a valid pair after an invalid one: the first of each is what counts
        headers += [(name.encode(), value.encode()) for name, value in service.signer.headers(body).items()]
    headers += extra
    response = service.run(service.post(body, headers))
    # Only a body signed by GitHub's key is parsed; that needs the real headers to come first.
    signed = duplicate and signature is None and key_id in (None, b"signer")
    assert response.status_code in ((200, 400, 413) if signed else (401, 413)), response.body


@fuzz(2500)
@given(body=garbage_bodies)
def test_garbage_signed_correctly_is_200_or_4xx_and_changes_nothing(
    service: Service, unchanged: None, body: bytes
) -> None:
    response = service.run(service.post(body, service.signer.headers(body)))
    assert response.status_code in (200, 400, 413), response.body
    assert (response.status_code == 413) == (len(body) > LIMIT)
    if response.status_code == 200:
        assert all(entry["label"] == "false_positive" for entry in response.json())


def chunks(size: int, chunk: int) -> Iterator[bytes]:
    for start in range(0, size, chunk):
        yield b"[" * min(chunk, size - start)


@fuzz(600)
@given(
    size=st.integers(LIMIT + 1, LIMIT * 3),
    framing=st.sampled_from(
        ["content-length", "chunked", "declared-small", "declared-huge", "declared-garbage"]
    ),
    chunk=st.integers(1, 70_000),
    signed_headers=st.booleans(),
)
def test_oversize_bodies_are_413_however_framed(
    service: Service, unchanged: None, size: int, framing: str, chunk: int, signed_headers: bool
) -> None:
    headers = dict(service.signer.headers(b"[]")) if signed_headers else {}
    content: Any = b"[" * size
    if framing == "content-length":
        headers["Content-Length"] = str(size)
    elif framing == "chunked":
        content = chunks(size, chunk)
    elif framing == "declared-small":
        headers["Content-Length"] = "10"
    elif framing == "declared-huge":
        headers["Content-Length"] = str(10**30)
    elif framing == "declared-garbage":
        headers["Content-Length"] = "\xb2"  # a digit to str.isdigit(), not to int()
    response = service.run(service.post(content, headers))
    assert response.status_code == (413 if signed_headers else 401), response.body


def test_default_limit_refuses_nine_mebibytes(signer: Signer, key_server: KeyServer, tmp_path: Path) -> None:
    """Past the shipped 2 MiB limit, with and without Content-Length; nothing past it is buffered.
    (The key identifier is looked up before the body is read, so GitHub's key document is served.)"""
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'db'}",
            secret_key=Fernet.generate_key().decode(),
            github_keys_url=key_server.url,
        ),
    )

    async def main() -> list[int]:
        headers = {**signer.headers(b"[]"), "Content-Length": str(9 << 20)}
        declared = await asgi_request(app, "POST", ALERT_PATH, headers, b" " * (9 << 20), INSIDE)
        streamed = await asgi_request(
            app, "POST", ALERT_PATH, signer.headers(b"[]"), chunks(9 << 20, 1 << 16), INSIDE
        )
        return [declared.status_code, streamed.status_code]

    assert asyncio.run(main()) == [413, 413]


# --- API authentication ------------------------------------------------------------------------------


def addresses() -> st.SearchStrategy[str]:
    return st.one_of(
        st.ip_addresses().map(str),
        st.sampled_from(
            ["10.1.2.3", "10.255.255.255", "::ffff:10.0.0.1", "0.0.0.0", "127.0.0.1", "localhost"]
        ),
        st.text(max_size=30),
    )


# Where our trusted proxy (the peer, 127.0.0.1) says its client connected from, and whether that is
# inside ALLOWLIST (10.0.0.0/8), written out by hand rather than computed. None: not an address.
PROXY_WRITTEN = {
    "10.1.2.3": True,
    "10.255.255.255": True,
    "::ffff:10.0.0.1": True,
    " 10.0.0.7 ": True,
    "11.0.0.1": False,
    "203.0.113.7": False,
    "2001:db8::1": False,
    "::ffff:11.0.0.1": False,
    "unknown": None,
    "10.0.0.1:443": None,
    "[10.0.0.1]": None,
}
TRUSTED_HOPS = ["127.0.0.1", "::1", "::ffff:127.0.0.1", "", " "]
"""Further trusted proxies between the first one and us (the default trusted set is loopback)."""


@dataclass(frozen=True)
class AuthCase:
    authorization: bytes | None
    forwarded: list[bytes]
    client_allowed: bool | None
    """By construction: whether the client our proxies vouch for is inside the allowlist."""
    other: list[tuple[bytes, bytes]]
    outside: bool


@st.composite
def forwarded_lines(draw: st.DrawFn) -> tuple[list[bytes], bool | None]:
    """``X-Forwarded-For`` lines as a chain of proxies writes them: whatever the client forged, the
    address the first trusted proxy saw, then further trusted hops; cut into lines anywhere."""
    forged = draw(st.lists(addresses() | st.sampled_from(["10.0.0.1", "127.0.0.1", ""]), max_size=4))
    written = draw(st.sampled_from(sorted(PROXY_WRITTEN)))
    hops = draw(st.lists(st.sampled_from(TRUSTED_HOPS), max_size=3))
    entries = [*forged, written, *hops]
    cuts = sorted(draw(st.sets(st.integers(1, len(entries)), max_size=3)))
    lines = [",".join(entries[a:b]) for a, b in zip([0, *cuts], [*cuts, len(entries)], strict=True)]
    return [line.encode("utf-8", "surrogatepass") for line in lines], PROXY_WRITTEN[written]


@st.composite
def auth_cases(draw: st.DrawFn, service: Service) -> AuthCase:
    token = draw(
        st.sampled_from([service.active, service.allowlisted, service.revoked])
        | st.builds(rules.API_KEY.mint)
        | st.builds(lambda: service.active[:-1] + "x")
        | st.builds(lambda t: t.lower(), st.just(service.active))
        | st.builds(lambda t, i: t[:i] + "\x00" + t[i:], st.just(service.active), st.integers(0, 42))
        | st.text(max_size=60)
        | st.integers(1_000, 100_000).map(lambda n: "spk_" + "a" * n)
    )
    scheme = draw(
        st.sampled_from(["Bearer ", "bearer ", "BEARER  ", "Basic ", "Token ", "", "Bearer\t", " Bearer "])
    )
    authorization = draw(
        st.none()
        | st.just(f"{scheme}{token}".encode("utf-8", "surrogatepass"))
        | st.just(f"{scheme}{token}, Bearer {service.active}".encode("utf-8", "surrogatepass"))
        | latin1
    )
    if draw(st.booleans()):  # half the cases present the fenced key properly: the allowlist decides
        authorization = f"{scheme if scheme.strip().lower() == 'bearer' else 'Bearer '}{service.allowlisted}"
        authorization = authorization.encode()
    forwarded, client_allowed = draw(st.just(([], False)) | forwarded_lines())
    other = draw(
        st.lists(
            st.tuples(
                st.sampled_from(
                    [b"Forwarded", b"X-Real-IP", b"X-Client-IP", b"True-Client-IP", b"Authorization"]
                ),
                addresses().map(lambda a: a.encode("utf-8", "surrogatepass")),
            ),
            max_size=3,
        )
    )
    return AuthCase(authorization, forwarded, client_allowed, other, draw(st.booleans()))


def admitted(service: Service, case: AuthCase) -> bool:
    """The model: exactly ``Bearer <active key>``, and for the fenced account an allowed client address:
    the one our trusted proxy vouches for (known by construction), never the peer (127.0.0.1 or
    203.0.113.7, both outside), and never anything when the peer is not a trusted proxy."""
    if case.authorization is None:
        return False
    scheme, _, token = case.authorization.decode("latin-1").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or token not in (service.active, service.allowlisted):
        return False
    if token == service.active:
        return True
    return not case.outside and case.client_allowed is True


@fuzz(2500)
@given(data=st.data())
def test_whoami_admits_only_real_keys_from_allowed_addresses(service: Service, unchanged: None, data) -> None:
    case = data.draw(auth_cases(service))
    headers = [(b"Authorization", case.authorization)] if case.authorization is not None else []
    headers += [(PROXY_HEADER.encode(), value) for value in case.forwarded]
    headers += case.other
    response = service.run(service.get("/v1/whoami", headers, OUTSIDE if case.outside else INSIDE))
    assert response.status_code in (200, 401), response.body
    assert (response.status_code == 200) == admitted(service, case), (case, response.body)
    if response.status_code == 401:
        assert response.json() == {"detail": "Missing or invalid Authorization header"}


# --- memory ----------------------------------------------------------------------------------------------


def rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


def test_memory_stays_flat_under_a_large_hostile_batch(service: Service, unchanged: None) -> None:
    rng = random.Random(20261127)
    signer = service.signer

    async def one() -> int:
        kind = rng.randrange(5)
        if kind == 0:
            body = rng.randbytes(rng.randrange(2000))
            headers = {
                "Github-Public-Key-Identifier": rng.randbytes(20).hex(),
                "Github-Public-Key-Signature": "AAAA",
            }
            return (await service.post(body, headers)).status_code
        if kind == 1:
            body = alert_body(*(rules.API_KEY.mint() for _ in range(rng.randrange(1, 20))))
            return (await service.post(body, signer.headers(body))).status_code
        if kind == 2:
            body = rng.randbytes(500)
            return (await service.post(body, signer.headers(body))).status_code
        if kind == 3:
            response = await service.post(chunks(LIMIT * 2, 8192), signer.headers(b"[]"))
            return response.status_code
        token = rng.choice([rules.API_KEY.mint(), service.revoked, "spk_" + "a" * 5000])
        headers = {"Authorization": f"Bearer {token}", PROXY_HEADER: f"10.0.0.{rng.randrange(256)}"}
        return (await service.get("/v1/whoami", headers)).status_code

    async def batch(count: int) -> set[int]:
        return {await one() for _ in range(count)}

    service.run(batch(1500))  # warm-up: caches, pools, allocator arenas
    gc.collect()
    before = rss_kib()
    statuses = service.run(batch(6000))
    gc.collect()
    growth = rss_kib() - before
    print(f"RSS {before} KiB -> {before + growth} KiB over 6,000 hostile requests")
    assert statuses <= {200, 400, 401, 413}
    assert growth < 16 * 1024, f"RSS grew by {growth} KiB over 6,000 hostile requests"
