"""Settings and fixtures for the whole suite."""

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.support.github import KeyServer, Signer

# No per-example deadline anywhere: the suite runs on a shared, loaded 2-core machine, where an
# example that writes a file or starts a process (or just waits for a core) can take seconds.
# A deadline there is a wall-clock limit in disguise; hangs are caught by the tests' own guards.
settings.register_profile("soundpiece", deadline=None)
settings.load_profile("soundpiece")


@pytest.fixture(scope="session")
def signer() -> Signer:
    """Plays GitHub: one signing key for the session (a test may define its own)."""
    return Signer()


@pytest.fixture
def key_server(signer: Signer) -> Iterator[KeyServer]:
    """GitHub's key endpoint on loopback, publishing ``signer``'s key."""
    with KeyServer(signer.document) as server:
        yield server
