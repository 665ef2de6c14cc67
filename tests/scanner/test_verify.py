"""``--verify``'s client: against the real ``soundpiece-partner serve`` and against misbehaving servers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
from cryptography.fernet import Fernet

import rules
from scanner.verify import VerifyConfigError, VerifyOptions, checked_api_url, verify_keys
from tests.support.processes import free_port
from tests.support.scanner_cli import scan
from tests.support.services import ServerProcess, partner_cli, service_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A real ``soundpiece-partner serve`` on loopback with one live and one revoked key."""
    home = tmp_path_factory.mktemp("api")
    env = service_env(
        database_url=f"sqlite:///{home / 'api.db'}",
        secret_key=Fernet.generate_key().decode(),
        mail_dir=str(home / "mail"),
    )
    partner_cli(env, "migrate")
    account = partner_cli(env, "accounts", "create", "--email", "owner@example.com")["account_id"]
    live = partner_cli(env, "keys", "create", "--account", str(account), "--label", "live")
    revoked = partner_cli(env, "keys", "create", "--account", str(account), "--label", "revoked")
    partner_cli(env, "keys", "revoke", str(revoked["key_id"]))
    server = ServerProcess(env, home, "api")
    server.start()
    try:
        yield server.url, {"live": live["key"], "revoked": revoked["key"], "secret": live["signing_secret"]}
    finally:
        server.stop()


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


def test_no_network_is_one_warning_saying_why(tmp_path: Path) -> None:
    """A real closed port: the verdicts are unknown, and stderr says once, not per key, why."""
    url = f"http://127.0.0.1:{free_port()}"
    keys = [rules.API_KEY.mint() for _ in range(3)]
    (tmp_path / "keys.env").write_text("".join(f"K{i}={key}\n" for i, key in enumerate(keys)))
    result = scan("--verify", "--api-url", url, "--format", "json", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert [f["live"] for f in json.loads(result.stdout)["findings"]] == [None, None, None]
    [warning] = result.stderr.decode().splitlines()
    assert warning.startswith("soundpiece-scan: warning: --verify could not tell whether 3 of 3 API keys")
    assert f"cannot reach {url}/v1/whoami (connection refused)" in warning


def test_an_answer_that_tells_nothing_is_one_warning_with_the_status(servers: list[Recorder]) -> None:
    server = Recorder(503)
    servers.append(server)
    warned: list[str] = []
    keys = [rules.API_KEY.mint() for _ in range(4)]
    assert verify_keys(keys, VerifyOptions(server.url), warned.append) == dict.fromkeys(keys)
    assert warned == [
        f"--verify could not tell whether 4 of 4 API keys are live: {server.url}/v1/whoami answered 503"
        " Service Unavailable"
    ]
    live = Recorder(200)
    servers.append(live)
    assert verify_keys(keys, VerifyOptions(live.url), warned.append) == dict.fromkeys(keys, True)
    assert len(warned) == 1  # every verdict told: nothing more to say


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


# --- the command line -------------------------------------------------------------------------

SCHEMA = ROOT / "tests" / "data" / "schemas" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def leaked_tree(
    api: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, dict[str, str]]:
    """A tree holding the live key (twice), its signing secret, the revoked key and a never-issued key."""
    url, keys = api
    tree = tmp_path_factory.mktemp("tree")
    never = rules.API_KEY.mint()
    (tree / "live.env").write_text(f"API_KEY={keys['live']}\nWEBHOOK_SECRET={keys['secret']}\n")
    (tree / "copy.py").write_text(f'KEY = "{keys["live"]}"\n')
    (tree / "old.env").write_text(f"API_KEY={keys['revoked']}\n")
    (tree / "never.txt").write_text(f"token: {never}\n")
    return tree, url, keys | {"never": never}


def test_verify_marks_each_finding(leaked_tree: tuple[Path, str, dict[str, str]]) -> None:
    tree, url, keys = leaked_tree
    result = scan("--verify", "--api-url", url, "--format", "json", ".", cwd=tree)
    assert result.returncode == 1, result.stderr
    live = {
        (f["path"].removeprefix("./"), f["type"]): f["live"] for f in json.loads(result.stdout)["findings"]
    }
    assert live == {
        ("live.env", "soundpiece_api_key"): True,
        ("live.env", "soundpiece_webhook_secret"): None,  # never sent: unknown
        ("copy.py", "soundpiece_api_key"): True,
        ("old.env", "soundpiece_api_key"): False,
        ("never.txt", "soundpiece_api_key"): False,
    }
    for secret in keys.values():
        assert secret.encode() not in result.stdout and secret.encode() not in result.stderr


def test_only_live_keeps_the_live_ones_and_the_verdict_follows(
    leaked_tree: tuple[Path, str, dict[str, str]], tmp_path: Path
) -> None:
    tree, url, keys = leaked_tree
    result = scan("--only-live", "--api-url", url, "--format", "jsonl", ".", cwd=tree)
    assert result.returncode == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted((r["path"].removeprefix("./"), r["live"]) for r in rows) == [
        ("copy.py", True),
        ("live.env", True),
    ]
    (tmp_path / "old.env").write_text(f"API_KEY={keys['revoked']}\n")
    clean = scan("--only-live", "--api-url", url, ".", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout  # a dead key found, none live
    assert clean.stdout.startswith(b"No credentials found")


def test_text_and_sarif_show_liveness(leaked_tree: tuple[Path, str, dict[str, str]]) -> None:
    tree, url, _keys = leaked_tree
    text = scan("--verify", "--api-url", url, ".", cwd=tree).stdout.decode()
    assert "(LIVE: the API accepts it, revoke it now)" in text
    assert "(not live: the API refuses it)" in text
    assert text.splitlines()[-1].startswith(
        "5 credentials found in 4 files, 2 live: rotate now (2 not live, 1 unknown)"
    )
    sarif = json.loads(scan("--verify", "--api-url", url, "--format", "sarif", ".", cwd=tree).stdout)
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
    verdicts = sorted(str(r["properties"]["live"]) for r in sarif["runs"][0]["results"])
    assert verdicts == ["False", "False", "None", "True", "True"]


def test_without_verify_nothing_is_sent(servers: list[Recorder], tmp_path: Path) -> None:
    server = Recorder(200)
    servers.append(server)
    (tmp_path / "a.env").write_text(f"K={rules.API_KEY.mint()}\n")
    result = scan("--format", "json", ".", cwd=tmp_path, env={"SOUNDPIECE_API_URL": server.url})
    assert result.returncode == 1
    assert "live" not in json.loads(result.stdout)["findings"][0]
    assert server.requests == []
    verified = scan("--verify", ".", cwd=tmp_path, env={"SOUNDPIECE_API_URL": server.url})
    assert verified.returncode == 1 and b"LIVE" in verified.stdout  # the variable names the API
    assert len(server.requests) == 1


def test_signing_secrets_are_never_sent(servers: list[Recorder], tmp_path: Path) -> None:
    server = Recorder(401)
    servers.append(server)
    pair = rules.mint_pair()
    (tmp_path / "pair.env").write_text(f"K={pair.api_key}\nS={pair.signing_secret}\n" * 3)
    assert scan("--verify", "--api-url", server.url, ".", cwd=tmp_path).returncode == 1
    assert server.requests == [("/v1/whoami", f"Bearer {pair.api_key}")]


def test_a_bad_api_url_is_refused_before_scanning(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(f"K={rules.API_KEY.mint()}\n")
    result = scan("--verify", "--api-url", "http://api.soundpiece.co", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode().strip() == (
        "soundpiece-scan: error: SOUNDPIECE_API_URL must be https (plain http only on loopback), "
        "not http://api.soundpiece.co"
    )
