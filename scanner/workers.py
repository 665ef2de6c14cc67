"""Scanning files on every core: one walker feeding batches of paths to a process pool.

Small scans never pay for a pool: workers start only once the walk has found
more files than one process handles in a blink.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from scanner import pool
from scanner.engine import Engine
from scanner.findings import Finding, Location, display_path
from scanner.pool import Pool
from scanner.sources.files import Root, Walker, open_reader, reader_at_start
from scanner.stats import ScanStats

BATCH = 256
"""Paths per queue message: large enough to amortise pickling, small enough to balance."""
POOL_THRESHOLD = 2 * BATCH
"""Files found before a pool is worth its start-up."""


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
    return _scan_in_pool(itertools.chain(first, iterator), engine, jobs, warn, progress)


def scan_roots(
    roots: Sequence[Root],
    walker: Walker,
    engine: Engine,
    *,
    jobs: int,
    warn: Warn,
    progress: Progress | None = None,
) -> tuple[list[Finding], ScanStats]:
    """Walk ``roots`` here and scan what the walk finds (see :func:`scan_paths`).

    Sharing the walk with the workers was measured and bought nothing: listing
    is a fifth of the work and overlaps the workers' reading already.
    """
    skipped = 0

    def walk_warn(message: str) -> None:  # special files, symlinks named, unlistable directories
        nonlocal skipped
        skipped += 1
        warn(message)

    findings, stats = scan_paths(
        walker.walk(roots, walk_warn), engine, jobs=jobs, warn=warn, progress=progress
    )
    stats.skipped += skipped
    return findings, stats


def _scan_here(
    paths: Iterable[bytes], engine: Engine, warn: Warn, progress: Progress | None
) -> tuple[list[Finding], ScanStats]:
    """Scan in this process, reporting progress like the pool does (a few large files take a while)."""
    stats = ScanStats()
    findings: list[Finding] = []
    last = time.monotonic()
    for path in paths:
        findings += scan_file(engine, path, stats, warn)
        if progress is not None and (now := time.monotonic()) - last >= pool.PROGRESS_INTERVAL:
            last = now
            progress(stats.files, stats.bytes)
    return findings, stats


def _scan_in_pool(
    paths: Iterator[bytes], engine: Engine, jobs: int, warn: Warn, progress: Progress | None
) -> tuple[list[Finding], ScanStats]:
    return Pool(_BatchScanner(engine), jobs).run(_batches(paths), warn, progress)


def _batches(paths: Iterator[bytes]) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for path in paths:
        batch.append(path)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _BatchScanner:
    """Scans one batch of paths (runs in a worker process)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __call__(self, batch: list[bytes], stats: ScanStats, warn: Warn) -> list[Finding]:
        findings: list[Finding] = []
        for path in batch:
            findings += scan_file(self._engine, path, stats, warn)
        return findings
