"""Files as a source: batches of walked paths, each read in bounded chunks.

A file is opened without following a symlink and without blocking (a file
swapped for a FIFO mid-scan cannot hang the read); its size is taken once it
proves larger than one chunk, so a file that grows during the scan cannot keep
the scan going for ever; holes in sparse files are produced as zeros without
asking the kernel.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence

from scanner.findings import Finding, Location, display_path
from scanner.sources.base import Hit, Opened, Warn
from scanner.sources.walk import Root, Walker
from scanner.stats import ScanStats

_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
"""NONBLOCK: a file swapped for a FIFO mid-scan cannot hang the read.
NOFOLLOW: a walked file swapped for a symlink is not followed."""

BATCH = 256
"""Paths per unit of work: large enough to amortise pickling, small enough to balance."""
POOL_THRESHOLD = 2 * BATCH
"""Worker processes start only once the walk has found more files than this."""


class FileSource:
    """Regular files under ``roots``, as the walk finds them, in units of :data:`BATCH` paths."""

    unit_name = "files"
    total: tuple[int, int] | None = None
    short_read_is_end = True
    pool_after: int | None = POOL_THRESHOLD // BATCH

    def __init__(self, roots: Sequence[Root] = (), walker: Walker | None = None) -> None:
        self._roots = tuple(roots)
        self._walker = walker or Walker()
        self._paths: Iterable[bytes] | None = None

    @classmethod
    def listed(cls, paths: Iterable[bytes]) -> FileSource:
        """Exactly these paths, as they come (no walk)."""
        source = cls()
        source._paths = paths
        return source

    def units(self, stats: ScanStats, warn: Warn) -> Iterator[list[bytes]]:
        def walk_warn(message: str) -> None:  # special files, symlinks named, unlistable directories
            stats.skipped += 1
            warn(message)

        paths, self._paths = self._paths, None  # a worker process gets the source without them
        if paths is None:
            paths = self._walker.walk(self._roots, walk_warn)
        batch: list[bytes] = []
        for path in paths:
            batch.append(path)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def open(self, unit: list[bytes], stats: ScanStats, warn: Warn) -> Opened:
        """Unreadable or vanished files are a warning, never a stop."""
        for path in unit:
            try:
                fd, readinto = open_reader(path)
            except OSError as exc:
                _skip(path, exc, stats, warn)
                continue
            try:
                yield path, readinto, functools.partial(FileReader, fd)
            except OSError as exc:  # thrown in by the runner: reading failed
                _skip(path, exc, stats, warn)
            finally:
                os.close(fd)

    def findings(self, hits: list[Hit], stats: ScanStats, warn: Warn) -> list[Finding]:
        found: list[Finding] = []
        for path, inner, matches in hits:
            assert isinstance(path, bytes)  # this source's keys
            location = Location(path=path, inner=inner)
            found += [Finding(match, location) for match in matches]
        return found

    def label(self, key: bytes) -> str:
        return display_path(key)

    def finish(self, stats: ScanStats, warn: Warn) -> None:
        pass

    def close(self) -> None:
        pass


def _skip(path: bytes, exc: OSError, stats: ScanStats, warn: Warn) -> None:
    stats.skipped += 1
    warn(f"{display_path(path)}: skipped: {exc.strerror or exc}")


class FileReader:
    """A second reader over an open file, from its first byte (the engine's line pass), that also
    reads at any offset (``pread``): a zip on disk is opened in place, however large."""

    __slots__ = ("_fd", "_offset", "_sparse")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._offset = 0
        self._sparse = _is_sparse(os.fstat(fd))

    def pread(self, view: memoryview, offset: int) -> int:
        return _read_sparse(self._fd, view, offset) if self._sparse else os.preadv(self._fd, (view,), offset)

    def __call__(self, view: memoryview) -> int:
        n = self.pread(view, self._offset)
        self._offset += n
        return n


_ZEROS = memoryview(bytes(1 << 20))


def _is_sparse(st: os.stat_result) -> bool:
    """Fewer blocks than bytes: the file has holes (a VM image, a database file, a 10 GB truncate)."""
    return stat.S_ISREG(st.st_mode) and st.st_blocks * 512 < st.st_size and hasattr(os, "SEEK_DATA")


def _read_sparse(fd: int, view: memoryview, offset: int) -> int:
    """``preadv`` at ``offset``, except that a hole is produced as zeros without asking the kernel.

    Reading a hole makes the kernel zero page after page (seconds per GiB); zeros cannot hold
    a credential, but they still count for offsets, lines and columns, so they are produced here.
    """
    try:
        data = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # no SEEK_DATA on this file system: read it all
            return os.preadv(fd, (view,), offset)
        data = max(os.fstat(fd).st_size, offset)  # nothing but a hole up to the end
    n = min(data - offset, len(view))
    if n <= 0:
        return os.preadv(fd, (view,), offset)
    done = 0
    while done < n:
        step = min(n - done, len(_ZEROS))
        view[done : done + step] = _ZEROS[:step]
        done += step
    return n


def open_reader(path: bytes) -> tuple[int, Callable[[memoryview], int]]:
    """Open ``path`` for the engine: a file descriptor and its ``readinto``.

    The first read is free; once a file proves larger than one chunk, its size
    is taken and reading stops there, so a file that grows during the scan
    cannot keep the scan going for ever.
    """
    fd = os.open(path, _OPEN_FLAGS)
    return fd, _Reader(fd)


class _Reader:
    __slots__ = ("fd", "left", "offset", "sparse")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.left = -1  # unknown until the first full chunk
        self.offset = 0  # of the next read, for a sparse file
        self.sparse = False

    def __call__(self, view: memoryview) -> int:
        if self.left < 0:
            n = os.readv(self.fd, (view,))
            if n == len(view):
                st = os.fstat(self.fd)
                self.left = max(st.st_size - n, 0)
                self.offset = n
                self.sparse = _is_sparse(st)
            return n
        if self.left == 0:
            return 0
        if self.sparse:
            n = _read_sparse(self.fd, view[: self.left], self.offset)
            self.offset += n
        else:
            n = os.readv(self.fd, (view[: self.left],))
        self.left -= n
        return n
