"""A repository's whole history as a source: every blob once, attributed to the commit that introduced it.

Flow: list the object database's blobs -> runs of them, each read through one
``git cat-file --batch`` on whichever core takes it -> ask git which commit and
path first introduced the few blobs that hold a credential -> findings.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from typing import cast

from scanner.filters.exclude import PathExcluder, drop_excluded
from scanner.findings import Finding
from scanner.sources.base import Hit, Opened, Warn
from scanner.sources.git.attribution import attribute
from scanner.sources.git.objects import LEAN_WALK, BlobStream, blob_reader, list_blobs, split_runs
from scanner.sources.git.repo import GitError, Repo, first_line, git_env
from scanner.stats import ScanStats


class HistorySource:
    """Every blob of the object database, in runs of pack order (one ``git cat-file`` a process)."""

    unit_name = "objects"
    short_read_is_end = True  # each blob's reader fills the view or ends the blob
    pool_after: int | None = 1

    def __init__(self, repo: Repo, *, jobs: int, excluder: PathExcluder | None = None) -> None:
        self._repo = repo
        self._jobs = jobs
        self._excluder = excluder
        self.total: tuple[int, int] | None = None
        self._check: _MissingObjects | None = None
        self._listed = False
        self._commits = 0
        self._stream: BlobStream | None = None
        """This process's reader, kept from one run to the next (:meth:`finish` ends it)."""

    def units(self, stats: ScanStats, warn: Warn) -> list[list[str]]:
        """Runs of object names: names alone, because every unit is pickled to a worker (86,864
        ``Blob`` dataclasses took 0.4 s of CPU to pickle and unpickle on sqlalchemy, names 0.04 s)."""
        repo = self._repo
        unreadable: list[str] = []
        # The walk starts first: it runs beside the listing, while the other core is idle, and is
        # mostly over before the readers' delta caches fill (on sqlalchemy as cloned: 58 MB less at
        # the peak, and its CPU out of the scan's way).
        self._check = _MissingObjects(repo)
        commits: list[int] = []
        blobs = list_blobs(repo, unreadable, commits)
        self._commits = commits[0]
        if unreadable:
            shown = ", ".join(oid[:12] for oid in unreadable[:5])
            warn(f"{len(unreadable)} objects could not be read (corrupt; partial results): {shown}")
            stats.skipped += len(unreadable)
        if repo.shallow:
            warn("shallow clone: history before the shallow boundary is not scanned (git fetch --unshallow)")
        if os.path.isdir(os.path.join(repo.git_dir, "lfs")):
            warn("Git LFS content is stored outside history: only its pointer files are scanned here")
        self._listed = bool(blobs)
        self.total = (len(blobs), sum(b.size for b in blobs))
        return [[b.oid for b in run] for run in split_runs(blobs, self._jobs)]

    def open(self, unit: list[str], stats: ScanStats, warn: Warn) -> Opened:
        """The blobs of one run, from this process's ``git cat-file --batch``; a broken stream ends
        the run (the next starts another git)."""
        repo = self._repo
        stream = self._stream = self._stream or BlobStream(repo)
        try:
            for oid, _size, readinto in stream.blobs(unit):
                yield oid, readinto, functools.partial(blob_reader, repo, oid)
        except GitError as exc:  # from the stream, or thrown in by the runner
            stats.skipped += 1
            warn(f"some objects could not be read: {exc}")
        if stream.missing:
            stats.skipped += len(stream.missing)
            warn(f"{len(stream.missing)} objects are missing from the repository (partial results)")
        if stream.broken:
            self.finish(stats, warn)

    def finish(self, stats: ScanStats, warn: Warn) -> None:
        """End this process's ``git cat-file``, saying why it failed if it did."""
        stream, self._stream = self._stream, None
        if stream is not None and (error := stream.close()):
            warn(f"git cat-file: {error}")

    def findings(self, hits: list[Hit], stats: ScanStats, warn: Warn) -> list[Finding]:
        check, self._check = self._check, None
        assert check is not None, "units() first"
        stats.skipped += check.result(warn)
        if not self._listed and check.failed:  # refs exist, yet no blob could be read: no "clean" verdict
            raise GitError(f"no object of the history could be read: {check.failed}")
        blobs = [(cast(str, oid), inner, matches) for oid, inner, matches in hits]  # this source's keys
        found = attribute(self._repo, blobs, warn, commits=self._commits, parts=self._jobs)
        return drop_excluded(found, self._excluder)

    def label(self, key: str) -> str:
        return f"blob {key}"

    def __getstate__(self) -> dict[str, object]:
        """A spawned worker needs the repository only; the missing-objects walk stays here."""
        return {**self.__dict__, "_check": None, "_stream": None}

    def close(self) -> None:
        if self._stream is not None:  # the scan failed in this process, between two runs
            self._stream.close()
            self._stream = None
        if self._check is not None:  # the scan failed before findings()
            self._check.stop()
            self._check = None


class _MissingObjects:
    """Objects that history refers to but the database lacks (a deleted loose object, say).

    Enumerating the database cannot see what is not there: this walk of every ref's trees
    (``git rev-list --objects --missing=print``) can, so a damaged repository gives a warning
    along with its partial results instead of a silently clean report.
    """

    def __init__(self, repo: Repo) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in result())
        # --quiet: the walk still visits every object, but prints only the missing ones (at its end),
        # not each object with its path (sqlalchemy as cloned: 16 MB of output; 0.71 s of CPU instead
        # of 1.06 s, and nothing for the reader thread to count).
        self._proc = subprocess.Popen(
            repo.command(*LEAN_WALK, "rev-list", "--objects", "--all", "--missing=print", "--quiet"),
            stdout=subprocess.PIPE,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=git_env(),
        )
        self.missing = 0
        self.failed = ""
        """git's message when the walk itself failed (a missing pack index, a bad object)."""
        # Read as it comes (a damaged repository may lack many objects): only the missing are counted.
        self._reader = threading.Thread(target=self._count, daemon=True)
        self._reader.start()

    def _count(self) -> None:
        assert self._proc.stdout is not None
        with cast(io.BufferedReader, self._proc.stdout) as out:
            self.missing = count_missing(iter(lambda: out.read1(1 << 20), b""))

    def stop(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._reader.join()
        self._err.close()

    def result(self, warn: Warn) -> int:
        code = self._proc.wait()
        self._reader.join()
        self._err.seek(0)
        error = first_line(self._err.read())
        self._err.close()
        if code:
            self.failed = error or f"git rev-list failed with status {code}"
        if self.missing:
            warn(f"{self.missing} objects are missing from the repository (partial results)")
        elif code and error:
            warn(f"history could not be walked completely (partial results): {error}")
        return self.missing


def count_missing(chunks: Iterable[bytes]) -> int:
    """Lines of ``rev-list --missing=print`` output that start with ``?``, counted a megabyte at a
    time: a line at a time in Python took the GIL from the listing beside it (277k lines on sqlalchemy)."""
    missing = 0
    after_newline = True
    for chunk in chunks:
        missing += chunk.count(b"\n?") + (after_newline and chunk[:1] == b"?")
        after_newline = chunk[-1:] == b"\n"
    return missing
