"""Settings and fixtures for the whole suite: GitHub's side, a database, an SMTP server."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine

from partner_endpoint.store.db import make_engine
from partner_endpoint.store.migrate import migrate
from tests.support.github import KeyServer, Signer
from tests.support.services import SmtpSink, postgres_url, scratch_schema

# No per-example deadline anywhere: the suite runs on a shared, loaded 2-core machine, where an
# example that writes a file or starts a process (or just waits for a core) can take seconds.
# A deadline there is a wall-clock limit in disguise; hangs are caught by the tests' own guards.
settings.register_profile("soundpiece", deadline=None)
settings.load_profile("soundpiece")


# --- GitHub -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def signer() -> Signer:
    """Plays GitHub: one signing key for the session (a test that needs a second key makes one)."""
    return Signer()


@pytest.fixture
def key_server(signer: Signer) -> Iterator[KeyServer]:
    """GitHub's key endpoint on loopback, publishing ``signer``'s key."""
    with KeyServer(signer.document) as server:
        yield server


# --- databases ----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own (safe under xdist,
    and for the service's own processes: the URL puts the schema first on the search path).

    Every test that uses it runs on both; ``ON_SQLITE`` or ``ON_POSTGRES`` (tests/support/services.py)
    narrows a test to one."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with scratch_schema(postgres_url()) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """``database_url``, migrated to the current schema."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


# --- mail ---------------------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """An SMTP server on loopback that keeps and counts what it is given (it can be stopped and
    started again by the test)."""
    with SmtpSink() as sink:
        yield sink
