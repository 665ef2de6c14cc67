"""The object database: every blob once, read by several ``git cat-file`` streams.

Enumerating the object database (as Nosey Parker does) reads each blob exactly
once, however many commits or paths share it, instead of diffing commit by
commit. Blobs are split by size into contiguous runs of pack order, so each
reader keeps delta bases close, and several readers use every core.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, cast

from scanner.sources.git.repo import GitError, Repo, first_line, git_env

READ_BUFFER = 1 << 20
PACK_WINDOWS = ("-c", "core.packedGitLimit=32m", "-c", "core.packedGitWindowSize=8m")
"""Git maps up to 1 GiB of pack by default and keeps it mapped; a reader that streams each object
once gains nothing from that, and its memory is counted against the scan."""
READER_WINDOWS = ("-c", "core.packedGitLimit=64m", "-c", "core.packedGitWindowSize=8m")
"""Blob readers map twice as much: on a repository as cloned from GitHub, a blob's delta chain runs
across much of the pack, and four 8 MiB windows were mapped and unmapped over and over (sqlalchemy
as cloned, its blobs in 8 runs into /dev/null: 6.6 s against 5.7 s; 17 MB more a reader)."""
LEAN_READER = ("-c", "core.deltaBaseCacheLimit=96m", *READER_WINDOWS)
"""Blob readers keep git's 96 MiB delta base cache: on a repository as cloned from GitHub (deep delta
chains) a 16 MiB cache made one stream of sqlalchemy's blobs take 15.0 s instead of 6.9 s (32 MiB:
11.8 s, 64 MiB: 8.0 s); repacked, 16 MiB cost nothing, which is where it was first measured."""
LEAN_WALK = ("-c", "core.deltaBaseCacheLimit=16m", *PACK_WINDOWS)
"""The tree walk beside the readers (missing objects): 181 MB with git's defaults, 78 MB with these,
0.89 s against 0.95 s on sqlalchemy as cloned (64 MiB of windows: no faster, 29 MB more)."""


@dataclass(frozen=True, slots=True)
class Blob:
    oid: str
    size: int


def list_blobs(
    repo: Repo, unreadable: list[str] | None = None, commits: list[int] | None = None
) -> list[Blob]:
    """Every blob in the object database, in pack order.

    Objects git lists but cannot read (a loose object of garbage, a damaged pack entry)
    come out as ``<oid> missing``: their type is unknown, so they go to ``unreadable``.
    ``commits``, when given, gets the number of commits listed (how to share out walks of history).
    """
    out = repo.run(
        "cat-file",
        "--batch-all-objects",
        "--unordered",
        "--batch-check=%(objecttype) %(objectname) %(objectsize)",
    )
    blobs = []
    for line in out.splitlines():
        parts = line.split(b" ")
        if len(parts) == 3 and parts[0] == b"blob" and parts[2].isdigit():
            blobs.append(Blob(parts[1].decode("ascii", "replace"), int(parts[2])))
        elif len(parts) != 3 and unreadable is not None:
            unreadable.append(parts[0].decode("ascii", "replace"))
    if commits is not None:
        commits.append(out.count(b"commit "))  # only a commit's line has it: names are hex, sizes digits
    return blobs


def split_runs(blobs: list[Blob], parts: int) -> list[list[Blob]]:
    """Contiguous runs of about equal total size (small runs balance the readers)."""
    total = sum(b.size for b in blobs) or 1
    target = total / max(parts, 1)
    runs: list[list[Blob]] = [[]]
    acc = 0
    for blob in blobs:
        if acc >= target and len(runs) < parts:
            runs.append([])
            acc = 0
        runs[-1].append(blob)
        acc += blob.size
    return [r for r in runs if r]


class BlobStream:
    """``git cat-file --batch`` over a list of object names, one blob at a time.

    Use :meth:`blobs` to iterate; each yielded reader must be read to its end
    (the engine always does) before the next blob.
    """

    def __init__(self, repo: Repo, oids: list[str]) -> None:
        self._names = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._names.write("\n".join(oids).encode("ascii") + b"\n")
        self._names.seek(0)
        self._proc = subprocess.Popen(
            repo.command(*LEAN_READER, "cat-file", "--batch"),
            stdin=self._names,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=READ_BUFFER,
            env=git_env(),
        )
        self.missing: list[str] = []
        _widen_pipe(self._proc.stdout)

    def blobs(self) -> Iterator[tuple[str, int, _BlobReader]]:
        out = cast(io.BufferedReader, self._proc.stdout)  # a pipe opened with a buffer (bufsize)
        assert out is not None
        while header := out.readline():
            parts = header.split()
            if len(parts) == 2 and parts[1] == b"missing":
                self.missing.append(parts[0].decode("ascii", "replace"))
                continue
            if len(parts) != 3:
                raise GitError(f"unexpected output from git cat-file: {header[:80]!r}")
            size = int(parts[2])
            reader = _BlobReader(out, size)
            yield parts[0].decode("ascii"), size, reader
            reader.drain()
            if out.read(1) != b"\n":
                raise GitError("git cat-file output was cut short (a corrupt pack?)")

    def close(self) -> str:
        """Wait for git; return its error message ('' when it ended well)."""
        if self._proc.stdout:
            self._proc.stdout.close()
        stderr = self._proc.stderr.read() if self._proc.stderr else b""
        code = self._proc.wait()
        self._names.close()
        return first_line(stderr) if code else ""


def _widen_pipe(stream: IO[bytes] | None) -> None:
    """A 1 MiB pipe instead of 64 KiB: far fewer wake-ups for gigabytes of blobs."""
    if stream is None or not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    with contextlib.suppress(OSError):  # the system limit may be lower: keep the default
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, READ_BUFFER)


class _BlobReader:
    """``readinto`` over exactly ``size`` bytes of the stream."""

    __slots__ = ("_left", "_out")

    def __init__(self, out: io.BufferedReader, size: int) -> None:
        self._out = out
        self._left = size

    def __call__(self, view: memoryview) -> int:
        if self._left <= 0:
            return 0
        n = self._out.readinto(view[: self._left] if len(view) > self._left else view)
        if not n:
            raise GitError("git cat-file output was cut short (a corrupt pack?)")
        self._left -= n
        return n

    def drain(self) -> None:
        while self._left > 0:
            chunk = self._out.read(min(self._left, READ_BUFFER))
            if not chunk:
                raise GitError("git cat-file output was cut short (a corrupt pack?)")
            self._left -= len(chunk)


def blob_reader(repo: Repo, oid: str) -> Callable[[memoryview], int]:
    """A fresh ``readinto`` over one blob (the engine's second pass for line numbers)."""
    return _OneBlob(repo, oid)


class _OneBlob:
    """``readinto`` over one blob from its own ``git cat-file blob``, which ends with the reader.

    The engine's second pass stops at its last match: git, blocked on the full pipe, then held
    the rest of the blob (and a process) until the worker exited; 26 MB at the peak of the
    sqlalchemy benchmark, for its one 21 MB blob.
    """

    __slots__ = ("_out", "_proc")

    def __init__(self, repo: Repo, oid: str) -> None:
        self._proc = subprocess.Popen(
            repo.command("cat-file", "blob", oid), stdout=subprocess.PIPE, env=git_env()
        )
        self._out = cast(io.BufferedReader, self._proc.stdout)  # Popen's default: a buffered pipe

    def __call__(self, view: memoryview) -> int:
        n = self._out.readinto(view) or 0
        if not n:
            self.close()
        return n

    def close(self) -> None:
        """End git (it may be waiting to write the rest) and reap it."""
        if self._proc.returncode is None:
            self._out.close()
            self._proc.kill()
            self._proc.wait()

    def __del__(self) -> None:
        if hasattr(self, "_proc"):  # not when git could not be started
            self.close()
