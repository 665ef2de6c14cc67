"""The HTTP server's bounds, shown on a real ``soundpiece-partner serve`` process over loopback.

The probes are the ones that found the holes (issue 10): a 16 MiB ``Authorization`` header was
processed; an unfinished 128 MiB header took the server from 97 to 329 MiB; 200,000 headers were
accepted; a connection that never sent a byte, and one trickling a header line, stayed open. Raw
sockets, since an HTTP client would refuse to send most of this. Socket timeouts are hang guards
(a server that keeps a connection open fails the test when they expire), not speed limits.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rules
from tests.support.github import KeyServer, Signer, alert_body
from tests.support.processes import HANG_GUARD, free_port, status_kb
from tests.support.services import PARTNER as CLI
from tests.support.services import ServerProcess, service_env

HEAD_LIMIT = 16 * 1024  # the documented defaults (README), tested as they ship
HEADER_LIMIT = 100
REQUEST_TIMEOUT = "3"  # shortened for the tests; the mechanism is the same at the default 10 s

Served = ServerProcess


def serve_env(tmp: Path, **values: str) -> dict[str, str]:
    defaults = {
        "database_url": f"sqlite:///{tmp / 'store.db'}",
        "secret_key": Fernet.generate_key().decode(),
        "mail_dir": str(tmp / "outbox"),
        "mail_worker": "off",
        "log_level": "INFO",
    }
    return service_env(**(defaults | values))


def running_serve(env: dict[str, str], log: Path, *, workers: int = 1) -> ServerProcess:
    """``soundpiece-partner serve`` on a free port, as a context manager: healthy inside, stopped after."""
    return ServerProcess(env, log.parent, log.stem, workers=workers)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One worker (the serve process is the worker: its memory is the server's)."""
    tmp = tmp_path_factory.mktemp("bounds")
    env = serve_env(tmp, request_timeout=REQUEST_TIMEOUT, keep_alive_timeout="1")
    with running_serve(env, tmp / "serve.log") as served:
        yield served


# --- raw HTTP -------------------------------------------------------------------------------------


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def send(sock: socket.socket, data: bytes) -> bool:
    """False once the server has closed the connection (it refused, and stopped reading)."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def receive(sock: socket.socket) -> bytes | None:
    """The next bytes from the server; None once it has closed the connection (or reset it)."""
    try:
        return sock.recv(65536) or None
    except ConnectionResetError:
        return None


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a hang guard timeout fails)."""
    received = b""
    while (data := receive(sock)) is not None:
        received += data
    return received


class Responses:
    """Reads responses (each with a Content-Length) one by one from a connection left open."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(self.buffer) < length:
            self._read()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status_code_of(head), body

    def _read(self) -> None:
        data = self.sock.recv(65536)
        assert data, f"closed before a whole response: {self.buffer!r}"
        self.buffer += data


def status_code_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def request(
    path: str = "/healthz", headers: list[tuple[str, str]] | None = None, close: bool = True
) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{n}: {v}" for n, v in headers or [])]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(port: int, data: bytes) -> bytes:
    with connect(port) as sock:
        send(sock, data)
        return read_until_closed(sock)


def trickle_until_closed(sock: socket.socket, piece: bytes, interval: float) -> bytes:
    """Send ``piece`` every ``interval`` s, answered or not, until the server closes the connection;
    what it sent meanwhile."""
    received = b""
    for _ in range(int(HANG_GUARD / interval)):
        readable, _, _ = select.select([sock], [], [], interval)
        if not readable:
            if not send(sock, piece):
                return received + read_until_closed(sock)
        elif (data := receive(sock)) is None:
            return received
        else:
            received += data
    raise AssertionError(f"the server kept a trickling connection open; it sent {received[:100]!r}")


# --- head size ------------------------------------------------------------------------------------


def test_a_head_of_16_kib_is_served_and_a_larger_header_is_refused(server: Served) -> None:
    at_limit = request()
    padded = request(headers=[("X-Pad", "a" * (HEAD_LIMIT - len(at_limit) - len("X-Pad: \r\n")))])
    assert len(padded) == HEAD_LIMIT
    assert status_code_of(exchange(server.port, padded)) == 200
    over = request(headers=[("X-Pad", "a" * (HEAD_LIMIT + 1))])
    response = exchange(server.port, over)
    assert status_code_of(response) == 431 and response.endswith(b"request head too large")


def test_a_16_mib_authorization_header_never_reaches_the_application(server: Served) -> None:
    huge = request("/v1/whoami", [("Authorization", "Bearer spk_" + "a" * (16 << 20))])
    response = exchange(server.port, huge)
    assert status_code_of(response) == 431  # not 401: the application never saw it


def test_a_long_target_is_refused(server: Served) -> None:
    response = exchange(server.port, request("/healthz?" + "q" * (HEAD_LIMIT + 1)))
    assert status_code_of(response) == 431


def test_an_unfinished_128_mib_header_costs_no_memory(server: Served) -> None:
    before = high_water_mib(server.process.pid)
    with connect(server.port) as sock:
        send(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        for _ in range(128):  # the header line never ends
            if not send(sock, chunk):
                break
        response = read_until_closed(sock)
    assert status_code_of(response) == 431
    grown = high_water_mib(server.process.pid) - before
    assert grown < 32, f"peak memory grew by {grown:.0f} MiB (it was 232 MiB before the bound)"


def high_water_mib(pid: int) -> float:
    """The process's own peak RSS (VmHWM)."""
    return status_kb(pid, b"VmHWM") / 1024


def chunked_with_trailer(trailer: bytes, close: bool = True) -> bytes:
    head = b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    return head + (b"Connection: close\r\n" if close else b"") + b"\r\n5\r\nhello\r\n0\r\n" + trailer


def test_trailers_count_towards_the_head(server: Served) -> None:
    small = exchange(server.port, chunked_with_trailer(b"X-Trailer: t\r\n\r\n"))
    assert status_code_of(small) == 405  # /healthz is GET only: the request was whole and answered
    at_once = exchange(
        server.port, chunked_with_trailer(b"X-Trailer: " + b"t" * (HEAD_LIMIT + 1) + b"\r\n\r\n")
    )
    assert at_once == b""  # refused as its last byte arrived, before the application could answer
    with connect(server.port) as sock:
        send(sock, chunked_with_trailer(b"X-Trailer: ", close=False))
        response = trickle_until_closed(sock, b"t" * 1000, interval=0.01)
    assert status_code_of(response) == 405 and response.endswith(b"request head too large")  # then 431


# --- header count ---------------------------------------------------------------------------------


def test_100_headers_are_served_and_200000_are_refused(server: Served) -> None:
    base = 2  # Host and Connection
    hundred = request(headers=[(f"X-{i}", "y") for i in range(HEADER_LIMIT - base)])
    assert status_code_of(exchange(server.port, hundred)) == 200
    one_more = request(headers=[(f"X-{i}", "y") for i in range(HEADER_LIMIT - base + 1)])
    response = exchange(server.port, one_more)
    assert status_code_of(response) == 431 and response.endswith(b"too many headers")
    flood = request(headers=[(f"X-{i}", "y") for i in range(200_000)])
    assert status_code_of(exchange(server.port, flood)) == 431  # too many, or (once past 16 KiB) too large


# --- time to a whole request ----------------------------------------------------------------------


def test_a_connection_that_never_sends_a_byte_is_closed(server: Served) -> None:
    with connect(server.port) as sock:
        response = read_until_closed(sock)
    assert status_code_of(response) == 408


def test_a_connection_trickling_header_lines_is_closed(server: Served) -> None:
    with connect(server.port) as sock:
        send(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        response = trickle_until_closed(sock, b"X-Slow: 1\r\n", interval=1.0)
    assert status_code_of(response) == 408


def test_a_kept_alive_connection_trickling_blank_lines_is_closed(server: Served) -> None:
    """Blank lines between requests are skipped by the parser, yet each one used to restart
    uvicorn's keep-alive timer."""
    with connect(server.port) as sock:
        send(sock, request(close=False))
        assert Responses(sock).next() == (200, b'{"status":"ok"}')
        response = trickle_until_closed(sock, b"\r\n", interval=0.5)
    assert status_code_of(response) == 408


def test_a_body_that_never_ends_is_cut(server: Served) -> None:
    with connect(server.port) as sock:
        send(sock, b"POST /v1/secret-scanning/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n")
        send(sock, b"Content-Type: application/json\r\n\r\n[")
        response = trickle_until_closed(sock, b" ", interval=0.5)
    assert response == b"" or status_code_of(response) == 401  # unsigned: answered at once, or not at all


def test_an_idle_kept_alive_connection_is_closed(server: Served) -> None:
    with connect(server.port) as sock:
        send(sock, request(close=False))
        assert Responses(sock).next()[0] == 200
        assert read_until_closed(sock) == b""  # after SOUNDPIECE_KEEP_ALIVE_TIMEOUT (1 s here)


def test_requests_on_one_connection_each_get_the_whole_head_allowance(server: Served) -> None:
    """The counts start again with each request: 20 heads of 12 KiB on one connection, some pipelined."""
    one = request(headers=[("X-Pad", "p" * 12_000)], close=False)
    with connect(server.port) as sock:
        responses = Responses(sock)
        for _ in range(10):
            send(sock, one)
            assert responses.next()[0] == 200
        send(sock, one * 10)  # pipelined: ten requests in one write
        assert [responses.next()[0] for _ in range(10)] == [200] * 10


HEADERS = st.lists(
    st.tuples(
        st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20).map(lambda n: "X-" + n),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=300),
    ),
    max_size=HEADER_LIMIT - 2,
)
CUTS = st.lists(st.floats(min_value=0, max_value=1), max_size=12)


def send_in_pieces(sock: socket.socket, data: bytes, cuts: list[float]) -> None:
    positions = sorted({int(c * len(data)) for c in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(positions):
        if not send(sock, data[start:end]):
            return
        time.sleep(0.002)  # separate reads on the server, mostly


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heads=st.lists(st.tuples(HEADERS, st.integers(0, HEAD_LIMIT)), min_size=1, max_size=4), cuts=CUTS)
def test_pipelined_heads_within_16_kib_are_served_however_they_are_cut(
    server: Served, heads: list[tuple[list[tuple[str, str]], int]], cuts: list[float]
) -> None:
    requests = []
    for number, (headers, pad) in enumerate(heads, start=1):
        last = number == len(heads)
        unpadded = len(request(headers=headers, close=last))
        pad = min(pad, HEAD_LIMIT - unpadded - len("X-Pad: \r\n"))
        assume(pad >= 0)
        requests.append(request(headers=[*headers, ("X-Pad", "p" * pad)], close=last))
    assert all(len(r) <= HEAD_LIMIT for r in requests)
    with connect(server.port) as sock:
        send_in_pieces(sock, b"".join(requests), cuts)
        responses = Responses(sock)
        assert [responses.next()[0] for _ in requests] == [200] * len(requests)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=HEADERS, pad=st.integers(HEAD_LIMIT + 1, 4 * HEAD_LIMIT), cuts=CUTS)
def test_a_head_whose_values_exceed_16_kib_is_refused_however_it_is_cut(
    server: Served, headers: list[tuple[str, str]], pad: int, cuts: list[float]
) -> None:
    with connect(server.port) as sock:
        send_in_pieces(sock, request(headers=[*headers, ("X-Pad", "p" * pad)]), cuts)
        assert status_code_of(read_until_closed(sock)) == 431


# --- connections ----------------------------------------------------------------------------------


def test_connections_past_the_limit_get_503_and_the_slot_is_reused(tmp_path: Path) -> None:
    env = serve_env(tmp_path, max_connections="4", keep_alive_timeout="60", request_timeout="60")
    with running_serve(env, tmp_path / "serve.log") as served:
        held = [connect(served.port) for _ in range(4)]
        for sock in held:  # each one served, so each one is open on the server's side
            send(sock, request(close=False))
            assert Responses(sock).next()[0] == 200
        refused = exchange(served.port, request())
        assert status_code_of(refused) == 503 and b"retry-after: 1" in refused.lower()
        held.pop().close()
        deadline = time.monotonic() + HANG_GUARD
        while status_code_of(exchange(served.port, request())) != 200:  # once the server saw the close
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for sock in held:
            sock.close()


# --- /metrics across workers, on its own port ---------------------------------------------------


def worker_pids(served: Served) -> list[int]:
    """The uvicorn workers: the serve process's spawned children (not multiprocessing's tracker)."""
    pid = served.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@contextlib.contextmanager
def only(served: Served, worker: int) -> Iterator[None]:
    """Every other worker stopped (SIGSTOP): new connections go to ``worker``. Kept short: uvicorn's
    supervisor replaces a worker that misses its 5 s health check (its counts survive that too)."""
    others = [pid for pid in worker_pids(served) if pid != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def alerts_counted(scrape: str) -> float:
    (line,) = [line for line in scrape.splitlines() if line.startswith("soundpiece_alerts_total ")]
    return float(line.split()[1])


def test_every_scrape_of_two_workers_shows_the_totals(
    tmp_path: Path, key_server: KeyServer, signer: Signer
) -> None:
    token = "metrics-" + "t" * 24
    env = serve_env(
        tmp_path, github_keys_url=key_server.url, metrics_port=str(free_port()), metrics_token=token
    )
    metrics_url = f"http://127.0.0.1:{env['SOUNDPIECE_METRICS_PORT']}/metrics"
    auth = {"Authorization": f"Bearer {token}"}
    body = alert_body(rules.API_KEY.mint())
    with running_serve(env, tmp_path / "serve.log", workers=2) as served:
        first, second = worker_pids(served)
        sent = 0
        for worker, count in ((first, 3), (second, 4)):
            with only(served, worker):
                for _ in range(count):
                    answer = httpx.post(
                        f"{served.url}/v1/secret-scanning/github", content=body, headers=signer.headers(body)
                    )
                    assert answer.status_code == 200
                    sent += 1
        for worker in (first, second):  # each worker answers a scrape with the host's total
            with only(served, worker):
                assert alerts_counted(httpx.get(metrics_url, headers=auth).text) == sent
        assert {alerts_counted(httpx.get(metrics_url, headers=auth).text) for _ in range(10)} == {sent}
        assert httpx.get(metrics_url).status_code == 401
        assert httpx.get(f"{served.url}/metrics", headers=auth).status_code == 404  # not on the service port


def test_serve_serves_no_metrics_by_default_and_says_how_to(server: Served) -> None:
    assert httpx.get(f"{server.url}/metrics").status_code == 404
    assert "/metrics is off: set SOUNDPIECE_METRICS_TOKEN or SOUNDPIECE_METRICS_PORT" in server.log()


PROXY_WARNING = "SOUNDPIECE_DASHBOARD_URL is https:// but SOUNDPIECE_TRUSTED_PROXY_HEADER is not set"


def test_serve_warns_of_an_https_dashboard_without_a_proxy_header(server: Served, tmp_path: Path) -> None:
    """Behind a TLS proxy without the header every user is one client: one sign-in budget for all."""
    assert PROXY_WARNING not in server.log()  # http on loopback: no proxy in front
    https = "https://dash.example/dashboard"
    with running_serve(serve_env(tmp_path, dashboard_url=https), tmp_path / "bare.log") as bare:
        assert PROXY_WARNING in bare.log()
    proxied = serve_env(tmp_path, dashboard_url=https, trusted_proxy_header="X-Forwarded-For")
    with running_serve(proxied, tmp_path / "proxied.log") as behind:
        assert PROXY_WARNING not in behind.log()


def test_serve_refuses_a_metrics_port_equal_to_the_service_port(tmp_path: Path) -> None:
    port = free_port()
    env = serve_env(tmp_path, metrics_port=str(port))
    result = subprocess.run(
        [CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert result.returncode == 2
    assert "SOUNDPIECE_METRICS_PORT must differ" in result.stderr and "Traceback" not in result.stderr
