"""Scanning a repository's whole history: every blob once, attributed to the commit that introduced it.

Flow: list the object database's blobs -> scan runs of them on every core ->
ask git which commit and path first introduced the few blobs that hold a
credential -> findings.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable

from scanner.engine import Engine, Match
from scanner.findings import Finding, Location
from scanner.pool import Pool
from scanner.sources.git.history import first_appearances
from scanner.sources.git.objects import Blob, BlobStream, blob_reader, list_blobs, split_runs
from scanner.sources.git.repo import GitError, Repo, first_line, git_env
from scanner.stats import ScanStats

Warn = Callable[[str], None]
RUNS_PER_JOB = 4


def scan_history(
    repo: Repo,
    engine: Engine,
    *,
    jobs: int,
    warn: Warn,
    progress: Callable[[int, int, int, int], None] | None = None,
) -> tuple[list[Finding], ScanStats]:
    unreadable: list[str] = []
    blobs = list_blobs(repo, unreadable)
    check = _MissingObjects(repo)  # runs beside the scan, on its own core
    if unreadable:
        shown = ", ".join(oid[:12] for oid in unreadable[:5])
        warn(f"{len(unreadable)} objects could not be read (corrupt; partial results): {shown}")
    if repo.shallow:
        warn("shallow clone: history before the shallow boundary is not scanned (git fetch --unshallow)")
    if os.path.isdir(os.path.join(repo.git_dir, "lfs")):
        warn("Git LFS content is stored outside history: only its pointer files are scanned here")
    total_bytes = sum(b.size for b in blobs)
    runs = split_runs(blobs, max(1, jobs * RUNS_PER_JOB))
    handler = _RunScanner(repo, engine)
    update = None
    if progress is not None:
        update = lambda n, b: progress(n, len(blobs), b, total_bytes)  # noqa: E731
    try:
        if jobs > 1 and len(runs) > 1:
            hits, stats = Pool(handler, jobs).run(runs, warn, update)
        else:
            stats = ScanStats()
            hits = [hit for run in runs for hit in handler(run, stats, warn)]
    except BaseException:
        check.stop()
        raise
    missing = check.result(warn)
    if missing:
        stats.skipped += missing
    stats.skipped += len(unreadable)
    if not blobs and check.failed:  # refs exist, yet not one blob could be read: no "clean" verdict
        raise GitError(f"no object of the history could be read: {check.failed}")
    return _attribute(repo, hits, warn), stats


class _MissingObjects:
    """Objects that history refers to but the database lacks (a deleted loose object, say).

    Enumerating the database cannot see what is not there: this walk of every ref's trees
    (``git rev-list --objects --missing=print``) can, so a damaged repository gives a warning
    along with its partial results instead of a silently clean report.
    """

    def __init__(self, repo: Repo) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in result())
        self._proc = subprocess.Popen(
            repo.command("rev-list", "--objects", "--all", "--missing=print"),
            stdout=subprocess.PIPE,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=git_env(),
        )
        self.missing = 0
        self.failed = ""
        """git's message when the walk itself failed (a missing pack index, a bad object)."""
        # Read as it comes (millions of lines on a big repository): only the missing are counted.
        self._reader = threading.Thread(target=self._count, daemon=True)
        self._reader.start()

    def _count(self) -> None:
        assert self._proc.stdout is not None
        with self._proc.stdout as out:
            self.missing = sum(1 for line in out if line.startswith(b"?"))

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


class _RunScanner:
    """Scans one run of blobs through one ``git cat-file --batch`` (runs in a worker)."""

    def __init__(self, repo: Repo, engine: Engine) -> None:
        self._repo = repo
        self._engine = engine

    def __call__(self, run: list[Blob], stats: ScanStats, warn: Warn) -> list[tuple[str, list[Match]]]:
        stream = BlobStream(self._repo, [b.oid for b in run])
        hits = []
        try:
            for oid, size, readinto in stream.blobs():
                matches, _ = self._engine.scan(readinto, reopen=lambda oid=oid: blob_reader(self._repo, oid))
                stats.files += 1
                stats.bytes += size
                if matches:
                    hits.append((oid, matches))
        except GitError as exc:
            stats.skipped += 1
            warn(f"some objects could not be read: {exc}")
        error = stream.close()
        if error:
            warn(f"git cat-file: {error}")
        if stream.missing:
            stats.skipped += len(stream.missing)
            warn(f"{len(stream.missing)} objects are missing from the repository (partial results)")
        return hits


def _attribute(repo: Repo, hits: list[tuple[str, list[Match]]], warn: Warn) -> list[Finding]:
    if not hits:
        return []
    oids = {oid for oid, _ in hits}
    damaged = False  # history cannot be walked: a credential found must not be dropped as "dangling"
    try:
        intros = first_appearances(repo, oids, ["--all"])
    except GitError as exc:  # a ref naming a missing commit makes --all fail as a whole
        try:
            tips = _readable_tips(repo)
            n = len(tips)
            warn(f"history could not be walked from every ref ({exc}): attributing from the {n} others")
            intros = first_appearances(repo, oids, tips) if tips else {}
        except GitError as again:  # a corrupt commit or tree on the way from every tip
            damaged = True
            warn(f"history could not be walked ({again}): credentials found are reported by blob id")
            intros = {}
    findings = []
    unreachable = []
    for oid, matches in hits:
        intro = intros.get(oid)
        if intro is None:
            unreachable.append(oid)
            continue
        location = Location(
            path=intro.path,
            commit=intro.commit,
            author_name=intro.author_name,
            author_email=intro.author_email,
            date=intro.date,
            blob=oid,
        )
        findings += [Finding(m, location) for m in matches]
    if unreachable:
        # A ref (usually a tag) may name a blob itself, with no commit or path around it.
        try:
            tagged = _refs_to_blobs(repo, set(unreachable))
        except GitError as exc:  # for-each-ref stops at a corrupt object a ref names
            damaged = True
            warn(f"refs could not be listed ({exc}): credentials found are reported by blob id")
            tagged = {}
        for oid, matches in hits:
            if oid in tagged:
                location = Location(path=tagged[oid].encode("utf-8", "surrogateescape"), blob=oid)
                findings += [Finding(m, location) for m in matches]
        unreachable = [oid for oid in unreachable if oid not in tagged]
    if unreachable and damaged:  # cannot tell dangling from committed: report, never drop
        for oid, matches in hits:
            if oid in unreachable:
                location = Location(path=oid.encode("ascii"), blob=oid)
                findings += [Finding(m, location) for m in matches]
    elif unreachable:
        shown = ", ".join(oid[:12] for oid in unreachable[:5])
        warn(
            f"{len(unreachable)} blobs holding credentials are not reachable from any ref "
            f"(staged or dangling objects, not reported as findings): {shown}"
        )
    return findings


def _readable_tips(repo: Repo) -> list[str]:
    """The commits and tags that refs and HEAD name and that the database holds."""
    out = repo.run("for-each-ref", "--format=%(objectname)")
    with contextlib.suppress(GitError):  # unborn or broken HEAD
        out += repo.run("rev-parse", "--verify", "--quiet", "HEAD")
    names = sorted(set(out.decode("ascii", "replace").split()))
    if not names:
        return []
    query = "\n".join(names).encode()
    checked = repo.run("cat-file", "--batch-check=%(objectname) %(objecttype)", input=query)
    return [
        line.split()[0]
        for line in checked.decode("ascii", "replace").splitlines()
        if line.endswith((" commit", " tag"))
    ]


def _refs_to_blobs(repo: Repo, oids: set[str]) -> dict[str, str]:
    """Blobs that a ref points at directly (``git tag key-blob <blob>``), with the ref's name."""
    out = repo.run("for-each-ref", "--format=%(objectname) %(*objectname) %(refname)")
    named: dict[str, str] = {}
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        target, peeled, ref = line.split(" ", 2)
        for oid in (peeled or target, target):
            if oid in oids:
                named.setdefault(oid, ref)
    return named
