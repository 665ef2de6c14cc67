"""The private PostgreSQL cluster scripts/test starts when no server is given: through the same
command line, it serves the ``test`` database, and ``stop`` leaves no process and no directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from partner_endpoint.store.db import make_engine
from tests.support.postgres_cluster import BIN_ENV
from tests.support.processes import HANG_GUARD, wait_for
from tests.support.services import ROOT, postgres_url


def cluster(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tests.support.postgres_cluster", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_GUARD)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def directory() -> Iterator[Path]:
    """What scripts/test hands the cluster (``mktemp -d``): not under tmp_path, which is root's alone."""
    path = Path(tempfile.mkdtemp(prefix="soundpiece-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)  # only when a test failed


def test_start_serves_the_test_database_and_stop_leaves_nothing(directory: Path) -> None:
    started = cluster("start", str(directory))
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:") and url.endswith("/test")
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (n integer)"))
            conn.execute(text("INSERT INTO t VALUES (1), (2)"))
            assert conn.execute(text("SELECT current_database(), sum(n) FROM t")).one() == ("test", 3)
        engine.dispose()
        server = int((directory / "data" / "postmaster.pid").read_text().split()[0])
        assert alive(server)
    finally:
        stopped = cluster("stop", str(directory))
    assert stopped.returncode == 0, stopped.stderr
    assert not directory.exists()
    wait_for(lambda: not alive(server), timeout=HANG_GUARD, what=f"server {server} gone")


def test_a_start_without_server_binaries_says_so_and_stop_still_cleans_up(directory: Path) -> None:
    started = cluster("start", str(directory), env=os.environ | {BIN_ENV: str(directory / "missing")})
    assert started.returncode == 1
    assert "no PostgreSQL server binaries" in started.stderr
    assert started.stdout == ""
    assert cluster("stop", str(directory)).returncode == 0
    assert not directory.exists()


def test_without_a_server_a_postgres_test_fails_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOUNDPIECE_TEST_POSTGRES_URL", raising=False)
    with pytest.raises(pytest.fail.Exception, match="SOUNDPIECE_TEST_POSTGRES_URL is not set"):
        postgres_url()
