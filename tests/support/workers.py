"""Which uvicorn worker holds a connection, read from /proc, so a test can reach every worker.

``serve --workers N`` shares one listening socket; the kernel hands each new connection to one
worker. The worker that accepted a connection is the process whose file descriptors include the
server side of it: its inode is in ``/proc/net/tcp`` (local port = the server's, remote port = ours).
Linux only, as the rest of the reliability suite.
"""

from __future__ import annotations

import http.client
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import process_tree


def server_side_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the accepted socket for our connection from ``client_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return int(fields[9])
    return None


def owner_of(inode: int, pids: list[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(fd.path) == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


@dataclass
class Pinned:
    """A kept-alive connection and the worker that holds it."""

    connection: http.client.HTTPConnection
    worker: int

    def get(self, path: str, headers: dict[str, str]) -> int:
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        response.read()
        return response.status


def worker_of(connection: http.client.HTTPConnection, server_pid: int, server_port: int) -> int:
    """The worker holding ``connection`` (which must be open: after a request, before closing)."""
    assert connection.sock is not None, "the connection is not open"
    client_port = connection.sock.getsockname()[1]
    for _ in range(50):  # the accept may not be visible in /proc for a moment
        inode = server_side_inode(server_port, client_port)
        if inode is not None and (pid := owner_of(inode, process_tree(server_pid))) is not None:
            return pid
        time.sleep(0.02)
    raise AssertionError(f"no worker of {server_pid} holds the connection from port {client_port}")


def pin_every_worker(
    server_pid: int,
    port: int,
    workers: int,
    headers: dict[str, str],
    within: float = 30.0,
    source: str | None = None,
) -> list[Pinned]:
    """One kept-alive connection per worker: connections are opened until each worker has one.

    Until ``within`` seconds have passed, not for a number of tries: the server answers once one
    worker is up, and on a loaded machine another may still be starting (or not scheduled) for
    longer than 64 connections take; that made this fail now and then beside the browser tests.
    ``source``: the client address to connect from (any of 127.0.0.0/8 on Linux)."""
    pinned: dict[int, Pinned] = {}
    deadline = time.monotonic() + within
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        source_address = None if source is None else (source, 0)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=source_address)
        connection.request("GET", "/healthz", headers=headers)
        connection.getresponse().read()
        worker = worker_of(connection, server_pid, port)
        if worker in pinned:
            connection.close()
            time.sleep(0.02)  # let a worker that is behind come round to accepting
        else:
            pinned[worker] = Pinned(connection, worker)
        if len(pinned) == workers:
            return list(pinned.values())
    for held in pinned.values():
        held.connection.close()
    raise AssertionError(f"reached {len(pinned)} of {workers} workers in {attempts} connections, {within} s")
