"""A private, throwaway PostgreSQL cluster: ``initdb`` into a directory of its own, a server on a
free loopback port (its unix socket in that directory, ``fsync=off``), stopped and deleted after.

scripts/test runs one for the whole suite when ``SOUNDPIECE_TEST_POSTGRES_URL`` names no server
(every xdist worker shares it); the fault tests start their own to stop and restart under load::

    python -m tests.support.postgres_cluster bin         # the server's bin directory, or exit 1
    python -m tests.support.postgres_cluster start DIR   # DIR: a new, empty directory; prints the URL
    python -m tests.support.postgres_cluster stop DIR    # stops its server at once, deletes DIR

(``stop DIR`` is for whatever ``start DIR`` left, also when it failed or was interrupted.)

The server binaries are Debian's (``/usr/lib/postgresql/N/bin``, the newest N), or those in
``SOUNDPIECE_TEST_POSTGRES_BIN``. Run as root, the tools run as the ``postgres`` user (``initdb``
and the server refuse root), so the directory is handed to that user. Standard library only: the
command line must start fast.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.processes import free_port

BIN_ENV = "SOUNDPIECE_TEST_POSTGRES_BIN"


def server_bin() -> Path | None:
    """The directory of ``initdb``, ``pg_ctl`` and ``createdb``, or None when they are missing."""
    if os.environ.get(BIN_ENV):
        candidates = [Path(os.environ[BIN_ENV])]
    else:
        versions = Path("/usr/lib/postgresql").glob("*/bin")
        candidates = sorted(versions, key=lambda p: [int(n) for n in p.parent.name.split(".") if n.isdigit()])
    usable = [path for path in candidates if (path / "initdb").is_file() and (path / "pg_ctl").is_file()]
    return usable[-1] if usable else None


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    if not shutil.which("runuser"):
        raise RuntimeError("running as root without runuser: cannot run PostgreSQL as another user")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and there is no postgres user to run PostgreSQL as") from None
    return ["runuser", "-u", "postgres", "--"]


class PrivatePostgres:
    """A throwaway PostgreSQL cluster we may stop and start at will (never the machine's shared one).

    ``PrivatePostgres()`` makes a fresh temporary directory, ``PrivatePostgres(directory)`` uses an
    empty one; either is ``initdb``'d at once. As a context manager: started, and destroyed after."""

    def __init__(self, directory: Path | None = None) -> None:
        bin_dir = server_bin()
        if bin_dir is None:
            where = os.environ.get(BIN_ENV) or "/usr/lib/postgresql/*/bin"
            raise RuntimeError(f"no PostgreSQL server binaries (initdb, pg_ctl) in {where}")
        self._bin = bin_dir
        self._prefix = _as_server_user()
        # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
        self.dir = directory or Path(tempfile.mkdtemp(prefix="soundpiece-pg-"))
        self.port = free_port()
        self.url = self.database_url("postgres")
        try:
            if self._prefix:
                shutil.chown(self.dir, "postgres", "postgres")
            self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-N")
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def database_url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        result = subprocess.run(
            [*self._prefix, str(self._bin / tool), *args], capture_output=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stderr.decode(errors='replace')[-1000:]}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"), "-w", "start"
        )

    def create_database(self, name: str) -> str:
        """A new, empty database on the running server; its URL."""
        self._run("createdb", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", name)
        return self.database_url(name)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        destroy(self.dir)

    def __enter__(self) -> PrivatePostgres:
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def destroy(directory: Path) -> None:
    """Stops the server of the cluster in ``directory`` at once, if one runs, and deletes it all."""
    data = directory / "data"
    bin_dir = server_bin()
    if (data / "postmaster.pid").exists() and bin_dir is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            command = [*_as_server_user(), str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate"]
            subprocess.run([*command, "-w", "stop"], capture_output=True, timeout=60, check=False)
    shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    usage = "usage: python -m tests.support.postgres_cluster bin | start DIR | stop DIR"
    if argv == ["bin"]:
        bin_dir = server_bin()
        if bin_dir is not None:
            print(bin_dir)
        return 0 if bin_dir is not None else 1
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(usage, file=sys.stderr)
        return 2
    directory = Path(argv[1])
    if argv[0] == "stop":
        destroy(directory)
        return 0
    try:  # whatever happens here, the caller runs ``stop DIR``
        cluster = PrivatePostgres(directory)
        cluster.start()
        url = cluster.create_database("test")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"cannot run a private PostgreSQL cluster: {exc}", file=sys.stderr)
        return 1
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
