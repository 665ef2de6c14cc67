"""Scanning files on every core: one walker feeding forked worker processes.

Threads cannot help here: per-file work is Python bytecode under the GIL. Each
worker owns an engine (its buffer and matcher scratch) and pulls batches of
paths from one queue, so a large file on one worker never idles the other.
Small scans never pay for a pool: workers start only once the walk has found
more files than one process handles in a blink.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from scanner.engine import Engine
from scanner.findings import Finding, Location, display_path
from scanner.sources.files import open_reader, reader_at_start
from scanner.stats import ScanStats

BATCH = 256
"""Paths per queue message: large enough to amortise pickling, small enough to balance."""
POOL_THRESHOLD = 2 * BATCH
"""Files found before a pool is worth its start-up."""
PROGRESS_INTERVAL = 0.25
"""Seconds between two progress reports."""

Warn = Callable[[str], None]
Progress = Callable[[int, int], None]


def scan_file(engine: Engine, path: bytes, stats: ScanStats, warn: Warn) -> list[Finding]:
    """Scan one file; unreadable or vanished files are a warning, never a stop."""
    try:
        fd, readinto = open_reader(path)
    except OSError as exc:
        stats.skipped += 1
        warn(f"{display_path(path)}: skipped: {exc.strerror or exc}")
        return []
    try:
        matches, size = engine.scan(readinto, short_read_is_end=True, reopen=lambda: reader_at_start(fd))
    except OSError as exc:
        stats.skipped += 1
        warn(f"{display_path(path)}: skipped: {exc.strerror or exc}")
        return []
    finally:
        os.close(fd)
    stats.files += 1
    stats.bytes += size
    if not matches:
        return []
    location = Location(path=path)
    return [Finding(match, location) for match in matches]


def scan_paths(
    paths: Iterable[bytes],
    engine: Engine,
    *,
    jobs: int,
    warn: Warn,
    progress: Progress | None = None,
) -> tuple[list[Finding], ScanStats]:
    """Scan every path, in this process or across ``jobs`` worker processes."""
    iterator = iter(paths)
    if jobs <= 1:  # scan as the walk goes: no waiting for the whole listing
        return _scan_here(iterator, engine, warn, progress)
    first: list[bytes] = []
    for path in iterator:
        first.append(path)
        if len(first) >= POOL_THRESHOLD:
            break
    else:  # a small scan: do it here
        return _scan_here(first, engine, warn, progress)
    return _scan_in_pool(_chain(first, iterator), engine, jobs, warn, progress)


def _scan_here(
    paths: Iterable[bytes], engine: Engine, warn: Warn, progress: Progress | None
) -> tuple[list[Finding], ScanStats]:
    """Scan in this process, reporting progress like the pool does (a few large files take a while)."""
    stats = ScanStats()
    findings: list[Finding] = []
    last = time.monotonic()
    for path in paths:
        findings += scan_file(engine, path, stats, warn)
        if progress is not None and (now := time.monotonic()) - last >= PROGRESS_INTERVAL:
            last = now
            progress(stats.files, stats.bytes)
    return findings, stats


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest


def _scan_in_pool(
    paths: Iterator[bytes], engine: Engine, jobs: int, warn: Warn, progress: Progress | None
) -> tuple[list[Finding], ScanStats]:
    import multiprocessing  # deferred: small scans never start a pool

    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    tasks = ctx.SimpleQueue()
    results = ctx.SimpleQueue()
    counters = ctx.RawArray("q", 2 * jobs)  # files, bytes per worker, for progress
    workers = [
        ctx.Process(target=_worker, args=(i, engine, tasks, results, counters), daemon=True)
        for i in range(jobs)
    ]
    for worker in workers:
        worker.start()
    # Feed from a thread while this one collects: a worker blocked on a full results
    # pipe (many warnings) would otherwise stop taking tasks while we wait to put one.
    failed: list[BaseException] = []

    def feed() -> None:
        try:
            batch: list[bytes] = []
            for path in paths:
                batch.append(path)
                if len(batch) >= BATCH:
                    tasks.put(batch)
                    batch = []
            if batch:
                tasks.put(batch)
        except BaseException as exc:  # the walk failed: stop the workers, re-raise below
            failed.append(exc)
        finally:
            for _ in workers:
                tasks.put(None)

    feeder = threading.Thread(target=feed, name="soundpiece-scan feeder", daemon=True)
    feeder.start()
    try:
        found = _collect(results, workers, counters, warn, progress)
        feeder.join()
        if failed:
            raise failed[0]
        return found
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
            worker.join()


def _collect(results, workers, counters, warn: Warn, progress: Progress | None):
    findings: list[Finding] = []
    stats = ScanStats()
    pending = len(workers)
    done = threading.Event()

    if progress is not None:

        def report() -> None:
            while not done.wait(PROGRESS_INTERVAL):
                progress(sum(counters[0::2]), sum(counters[1::2]))

        threading.Thread(target=report, daemon=True).start()
    try:
        while pending:
            kind, payload = results.get()
            if kind == "warn":
                warn(payload)
            elif kind == "done":
                worker_findings, worker_stats = payload
                findings += worker_findings
                stats.merge(worker_stats)
                pending -= 1
            else:  # "error": a worker crashed; report it rather than hang
                raise RuntimeError(payload)
    finally:
        done.set()
    return findings, stats


def _worker(index: int, engine: Engine, tasks, results, counters) -> None:
    stats = ScanStats()
    findings: list[Finding] = []

    def warn(message: str) -> None:
        results.put(("warn", message))

    try:
        while (batch := tasks.get()) is not None:
            for path in batch:
                findings += scan_file(engine, path, stats, warn)
            counters[2 * index] = stats.files
            counters[2 * index + 1] = stats.bytes
        results.put(("done", (findings, stats)))
    except BaseException as exc:  # never leave the parent waiting
        results.put(("error", f"worker {index} failed: {exc!r}"))
