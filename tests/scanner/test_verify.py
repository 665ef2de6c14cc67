"""``--verify``'s client: against the real ``soundpiece-partner serve`` and against misbehaving servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

import rules
from scanner.verify import VerifyConfigError, VerifyOptions, checked_api_url, verify_keys

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def partner(env: dict[str, str], *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "partner_endpoint.cli", *args, "--json"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A real ``soundpiece-partner serve`` on loopback with one live and one revoked key."""
    home = tmp_path_factory.mktemp("api")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")}
    env |= {
        "SOUNDPIECE_DATABASE_URL": f"sqlite:///{home / 'api.db'}",
        "SOUNDPIECE_SECRET_KEY": "8Jr2bXcS3x8dYkbP0dWc4Qh4o5wPj0Qe2q3aQm1Tz3U=",
        "SOUNDPIECE_MAIL_DIR": str(home / "mail"),
    }
    account = partner(env, "accounts", "create", "--email", "owner@example.com")["account_id"]
    live = partner(env, "keys", "create", "--account", str(account), "--label", "live")
    revoked = partner(env, "keys", "create", "--account", str(account), "--label", "revoked")
    partner(env, "keys", "revoke", str(revoked["key_id"]))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "partner_endpoint.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield url, {"live": live["key"], "revoked": revoked["key"], "secret": live["signing_secret"]}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_live_revoked_and_never_issued_keys(api: tuple[str, dict[str, str]]) -> None:
    url, keys = api
    never_issued = rules.API_KEY.mint()
    verdicts = verify_keys([keys["live"], keys["revoked"], never_issued, keys["live"]], VerifyOptions(url))
    assert verdicts == {keys["live"]: True, keys["revoked"]: False, never_issued: False}


# --- misbehaving servers ----------------------------------------------------------------------


class Recorder(ThreadingHTTPServer):
    """Answers every request with ``status`` (and ``location``), recording headers and concurrency."""

    daemon_threads = True

    def __init__(self, status: int, location: str | None = None, delay: float = 0.0) -> None:
        self.status, self.location, self.delay = status, location, delay
        self.requests: list[tuple[str, str]] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.requests.append((self.path, self.headers.get("Authorization", "")))
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        time.sleep(server.delay)
        with server.lock:
            server.in_flight -= 1
        self.send_response(server.status)
        if server.location:
            self.send_header("Location", server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    for server in made:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [403, 404, 429, 500, 503])
def test_other_answers_mean_could_not_tell(servers: list[Recorder], status: int) -> None:
    server = Recorder(status)
    servers.append(server)
    key = rules.API_KEY.mint()
    assert verify_keys([key], VerifyOptions(server.url)) == {key: None}
    assert server.requests == [("/v1/whoami", f"Bearer {key}")]


def test_a_redirect_off_the_host_is_not_followed(servers: list[Recorder]) -> None:
    elsewhere = Recorder(200)
    server = Recorder(302, location=f"{elsewhere.url}/v1/whoami")  # another port: another origin
    servers += [elsewhere, server]
    key = rules.API_KEY.mint()
    assert verify_keys([key], VerifyOptions(server.url)) == {key: None}
    assert elsewhere.requests == []  # the key never reached it


def test_a_redirect_on_the_host_is_followed_a_few_times(servers: list[Recorder]) -> None:
    loop = Recorder(307, location="/v1/whoami?again")
    servers.append(loop)
    key = rules.API_KEY.mint()
    assert verify_keys([key], VerifyOptions(loop.url)) == {key: None}
    assert len(loop.requests) == 4  # the first request and three redirects, then it gives up


def test_unreachable_api_means_could_not_tell() -> None:
    key = rules.API_KEY.mint()
    assert verify_keys([key], VerifyOptions(f"http://127.0.0.1:{free_port()}", timeout=2)) == {key: None}


def test_concurrency_is_bounded_and_each_key_asked_once(servers: list[Recorder]) -> None:
    server = Recorder(401, delay=0.05)
    servers.append(server)
    keys = [rules.API_KEY.mint() for _ in range(20)]
    verdicts = verify_keys(keys + keys[:5], VerifyOptions(server.url, concurrency=3))
    assert verdicts == dict.fromkeys(keys, False)
    assert sorted(auth for _, auth in server.requests) == sorted(f"Bearer {k}" for k in keys)
    assert 1 <= server.most_in_flight <= 3


@pytest.mark.parametrize(
    "url",
    [
        "http://api.soundpiece.co",
        "http://192.0.2.1:8000",
        "ftp://127.0.0.1",
        "https://",
        "not a url at all",
        "file:///etc/passwd",
    ],
)
def test_credentials_go_over_https_or_loopback_only(url: str) -> None:
    with pytest.raises(VerifyConfigError):
        checked_api_url(url)


@pytest.mark.parametrize(
    "url", ["https://api.soundpiece.co", "http://127.0.0.1:9", "http://[::1]:9", "http://localhost"]
)
def test_accepted_api_urls(url: str) -> None:
    assert checked_api_url(url).host
