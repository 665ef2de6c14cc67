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
import os
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
READER_WINDOWS = ("-c", "core.packedGitLimit=32m", "-c", "core.packedGitWindowSize=4m")
"""Blob readers map as much pack in twice as many windows: on a repository as cloned from GitHub, a
blob's delta chain runs across much of the pack, and four 8 MiB windows were mapped and unmapped
over and over. sqlalchemy as cloned, its blobs through two readers taking turns (into /dev/null):
32m/4m 6.2-6.5 s of CPU, 48m/6m 6.5 s, 32m/8m 7.0 s; a reader's peak PSS 154 MB against 170 MB
with 48m/6m (it keeps its windows mapped from run to run)."""
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


def split_runs(blobs: list[Blob], jobs: int) -> list[list[Blob]]:
    """Contiguous runs of pack order for ``jobs`` readers, each run a share of what is left (1 / 2 jobs
    of it), none smaller than 1 / 16 jobs of the whole but the last.

    Large runs first keep delta bases close; small ones last keep every reader busy to the end.
    Equal runs ended unevenly, since a run's cost is not its size: sqlalchemy as cloned, 8 runs of
    566 MB each took git 0.46 s to 1.06 s, and the last left one core to itself for 0.6 s.
    """
    total = sum(b.size for b in blobs) or 1
    jobs = max(jobs, 1)
    smallest = total / (16 * jobs)
    left = total
    target = max(left / (2 * jobs), smallest)
    runs: list[list[Blob]] = [[]]
    size = 0
    for blob in blobs:
        if size >= target:
            left -= size
            target = max(left / (2 * jobs), smallest)
            runs.append([])
            size = 0
        runs[-1].append(blob)
        size += blob.size
    return [r for r in runs if r]


class BlobStream:
    """One ``git cat-file --batch`` that reads run after run of blobs, one blob at a time.

    A process keeps one for every run it takes: a git started for each run read its pack index
    again and filled its delta cache anew (sqlalchemy as cloned, its blobs in 8 runs into /dev/null:
    6.7 s of CPU in 8 processes, 6.3 s in 2 taking turns), so runs can be small, which balances the
    readers. Use :meth:`blobs` to iterate; each yielded reader must be read to its end (the engine
    always does) before the next blob. Once :attr:`broken`, a stream reads nothing more.
    """

    def __init__(self, repo: Repo) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            repo.command(*LEAN_READER, "cat-file", "--batch"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,  # a file: git never waits on it, however much it says
            bufsize=READ_BUFFER,
            env=git_env(),
        )
        assert self._proc.stdin is not None
        self._names = self._proc.stdin.fileno()
        # Names are written ahead of the reading, as much as the pipe takes: git reads them as it
        # goes, and a blocking write of more could wait on git while git waits on us.
        os.set_blocking(self._names, False)
        _widen_pipe(self._proc.stdin)
        _widen_pipe(self._proc.stdout)
        self.missing: list[str] = []
        """The names of the last run that the database lacks."""
        self.broken = False

    def blobs(self, oids: list[str]) -> Iterator[tuple[str, int, _BlobReader]]:
        """The blobs named, in order; those the database lacks go to :attr:`missing`."""
        out = cast(io.BufferedReader, self._proc.stdout)  # a pipe opened with a buffer (bufsize)
        names = memoryview(("\n".join(oids) + "\n").encode("ascii"))
        self.missing = []
        self.broken = True  # until the run is read to its end
        for _ in oids:
            if names:  # before each read, so git always has the name it is to answer
                names = names[self._send(names) :]
            header = out.readline()
            if not header:
                return  # git ended (close() says why)
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
        self.broken = False

    def _send(self, names: memoryview) -> int:
        """Write what the pipe takes of ``names`` now; how many bytes."""
        try:
            return os.write(self._names, names)
        except BlockingIOError:  # the pipe is full: git has names enough for now
            return 0
        except BrokenPipeError:  # git is gone: its output ends, and close() says why
            return len(names)

    def close(self) -> str:
        """End git; return its error message ('' when it ended well)."""
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(OSError):  # git may be gone already
            proc.stdin.close()
        proc.stdout.close()  # git, were it still writing, gets SIGPIPE
        code = proc.wait()
        self._err.seek(0)
        error = first_line(self._err.read())
        self._err.close()
        return error if code else ""


def _widen_pipe(stream: IO[bytes] | None) -> None:
    """A 1 MiB pipe instead of 64 KiB: far fewer wake-ups for gigabytes of blobs."""
    if stream is None or not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    with contextlib.suppress(OSError):  # the system limit may be lower: keep the default
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, READ_BUFFER)


class _BlobReader:
    """``readinto`` over exactly ``size`` bytes of the stream: it fills the view or reads to the blob's
    end (a buffered pipe reads until it has what is asked), so a short read is the end."""

    __slots__ = ("_left", "_out")

    def __init__(self, out: io.BufferedReader, size: int) -> None:
        self._out = out
        self._left = size

    def __call__(self, view: memoryview) -> int:
        if self._left <= 0:
            return 0
        if len(view) > self._left:
            view = view[: self._left]
        n = self._out.readinto(view)
        if n < len(view):
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
