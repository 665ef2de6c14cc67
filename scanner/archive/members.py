"""The members of an archive, each a bounded reader: zip (and jar, whl, docx...), tar, and compressed files.

Members come one at a time, in the archive's order, read through the standard
library's :mod:`zipfile` and :mod:`tarfile` (and :mod:`zlib`, :mod:`bz2`, :mod:`lzma`,
``zstandard``) without extracting anything. A member that cannot be read (encrypted,
an unsupported method, corrupt) is one warning and the next member is read; an archive
that cannot be read on ends with one warning. Bounds: :mod:`scanner.archive.limits`.
"""

from __future__ import annotations

import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

from scanner.archive import sniff
from scanner.archive.limits import RATIO_FLOOR, Budget
from scanner.archive.streams import (
    ArchiveError,
    Forward,
    RandomAccess,
    RawFile,
    decompressed,
    memory_pread,
    read_head,
    replay,
)
from scanner.engine import ReadInto
from scanner.engine.engine import bytes_reader

Member = tuple[bytes, ReadInto, Callable[[], ReadInto] | None]
"""(name inside the archive, reader, reopen or None); a compressed file's one member is named ``b""``."""
Say = Callable[[bytes | None, str], None]
"""Warns about the archive (None) or one of its members (its name)."""
Errors = tuple[type[Exception], ...]

ZIP_ERRORS: Errors = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, UnicodeDecodeError)
"""What zipfile raises for a damaged archive: its own error (a bad CRC, a bad header), those of the
decompressors it drives (deflate: ``zlib.error``; bzip2: ``OSError``, ``EOFError``; lzma:
``LZMAError``, ``EOFError``), a name flagged UTF-8 that is not, and ``OSError`` from the file under it."""
TAR_ERRORS: Errors = (tarfile.TarError, EOFError, OSError)
"""What tarfile raises for a damaged archive (``ReadError``: data cut short), and the input under it."""
ZIP_OPEN_ERRORS: Errors = (*ZIP_ERRORS, zipfile.LargeZipFile, NotImplementedError)
"""Also, when a zip or a member is opened: what zipfile lacks (a newer zip version, a compression method)."""
TAR_HEADER_ERRORS: Errors = (*TAR_ERRORS, ValueError)
"""Also, when tarfile reads a header: a GNU sparse header's numbers that are not numbers."""
STREAM_ERRORS: Errors = (OSError,)
"""A compressed file's decompressor raises :class:`ArchiveError` itself (:mod:`~scanner.archive.streams`);
``OSError`` comes from the input under it."""


def corrupt(exc: Exception) -> ArchiveError:
    """The :class:`ArchiveError` for what a format's library raised on damaged input."""
    return ArchiveError(f"truncated or corrupt ({type(exc).__name__}: {exc})")


@dataclass(frozen=True, slots=True)
class Body:
    """An archive's bytes, to be read again: held in memory, or reopened from where they came from."""

    size: int
    data: bytes | None = None
    reopen: Callable[[], ReadInto] | None = None

    def reader(self) -> ReadInto | None:
        if self.data is not None:
            return bytes_reader(self.data)
        return self.reopen() if self.reopen is not None else None

    def random_access(self, in_memory: int) -> RandomAccess | None:
        """A seekable file over the archive: in memory, at any offset of a file, or read into memory."""
        if self.data is not None:
            return RandomAccess(memory_pread(self.data), self.size)
        reader = self.reader()
        if reader is None:
            return None
        pread = getattr(reader, "pread", None)
        if pread is not None:
            return RandomAccess(pread, self.size)
        if self.size > in_memory:
            return None
        data = read_head(reader, self.size)
        return RandomAccess(memory_pread(data), len(data))

    def whole(self, in_memory: int, what: str) -> bytes:
        """All of it in memory, up to ``in_memory`` bytes (a mail or a PDF is parsed whole)."""
        if self.data is not None:
            return self.data
        if self.size > in_memory:
            raise ArchiveError(
                f"{what} of {self.size / (1 << 20):.1f} MiB, over {in_memory >> 20} MiB (archive-in-memory):"
                " not opened"
            )
        reader = self.reader()
        if reader is None:
            raise ArchiveError("cannot be read twice (standard input larger than a chunk): not opened")
        try:
            return read_head(reader, self.size)
        except STREAM_ERRORS as exc:
            raise corrupt(exc) from None


def members(kind: str, body: Body, budget: Budget, say: Say) -> Iterator[Member]:
    """The members of an archive of ``kind`` (:func:`scanner.archive.sniff.sniff`)."""
    if kind == sniff.ZIP:
        return _zip(body, budget, say)
    if kind in (sniff.MAIL, sniff.MBOX):
        from scanner.archive import mail  # deferred: the email package is imported when mail turns up

        return mail.members(kind, body, budget, say)
    if kind == sniff.PDF:
        from scanner.archive import pdf

        return pdf.members(body, budget, say)
    if kind == sniff.HEXDUMP:
        from scanner.archive import hexdump

        return hexdump.members(body, budget, say)
    reader = body.reader()
    if reader is None:
        raise ArchiveError("cannot be read twice (standard input larger than a chunk): not opened")
    if kind == sniff.TAR:
        return _tar(reader, budget, say)
    return _compressed(kind, body, reader, budget, say)


# ---------------------------------------------------------------- zip


def _zip(body: Body, budget: Budget, say: Say) -> Iterator[Member]:
    limits = budget.limits
    file = body.random_access(limits.in_memory)
    if file is None:
        raise ArchiveError(
            f"a zip inside an archive or read from a stream is opened only up to {limits.in_memory >> 20}"
            f" MiB (archive-in-memory); this one is {body.size / (1 << 20):.1f} MiB: its members are not"
            " scanned"
        )
    try:
        entries = _zip_entries(file)
        if entries is not None and entries > budget.members_left:
            raise ArchiveError(
                f"{entries:,} entries, more than the bound of {limits.members:,} (archive-members)"
            )
        archive = zipfile.ZipFile(file)
    except ZIP_OPEN_ERRORS as exc:
        raise ArchiveError(f"not a readable zip archive (truncated or corrupt: {exc})") from None
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename.encode("utf-8", "surrogateescape")
        admit(name, budget, say)
        if info.flag_bits & 0x1:
            say(name, "encrypted member: not scanned")
            continue

        def reopen(info: zipfile.ZipInfo = info) -> ReadInto:
            try:
                handle = archive.open(info)
            except ZIP_OPEN_ERRORS as exc:
                raise ArchiveError(str(exc) or type(exc).__name__) from None
            return Bounded(
                cast(zipfile.ZipExtFile, handle).readinto, budget, ZIP_ERRORS, compressed=info.compress_size
            )

        try:
            reader = reopen()
        except ArchiveError as exc:
            say(name, f"cannot be read ({exc}): not scanned")
            continue
        yield name, reader, reopen


def _zip_entries(file: RandomAccess) -> int | None:
    """The entry count the end-of-central-directory record claims (zipfile would list them all)."""
    size = file.seek(0, 2)
    tail_size = min(size, (1 << 16) + 22)
    file.seek(size - tail_size)
    tail = file.read(tail_size) or b""
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    entries = int.from_bytes(tail[at + 10 : at + 12], "little")
    locator = tail[at - 20 : at] if at >= 20 else b""
    if entries == 0xFFFF and locator.startswith(b"PK\x06\x07"):  # zip64: the count is in its own record
        file.seek(int.from_bytes(locator[8:16], "little"))
        record = file.read(56) or b""
        if record.startswith(b"PK\x06\x06") and len(record) == 56:
            entries = int.from_bytes(record[32:40], "little")
    return entries


# ---------------------------------------------------------------- tar


def _tar(readinto: ReadInto, budget: Budget, say: Say) -> Iterator[Member]:
    stream = Forward(readinto)
    try:
        archive = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 (a stream: nothing to close)
    except TAR_HEADER_ERRORS as exc:
        raise ArchiveError(f"not a readable tar archive (truncated or corrupt: {exc})") from None
    while True:
        stream.in_member = False
        stream.metadata = 0
        try:
            info = archive.next()
        except TAR_HEADER_ERRORS as exc:
            raise ArchiveError(f"truncated or corrupt tar archive ({exc})") from None
        if info is None:
            return
        # tarfile keeps every header otherwise (an attribute its stubs omit): memory would grow with entries
        archive.members.clear()  # type: ignore[attr-defined]
        if not info.isreg():
            continue  # directories, links, devices: no content of their own
        name = info.name.encode("utf-8", "surrogateescape")
        admit(name, budget, say)
        handle = cast(tarfile.ExFileObject, archive.extractfile(info))
        assert handle is not None  # a regular file always has one

        def read(view: memoryview, handle: tarfile.ExFileObject = handle) -> int:
            stream.in_member = True
            try:
                return handle.readinto(view)
            finally:
                stream.in_member = False

        yield name, Bounded(read, budget, TAR_ERRORS, counts=False), None


# ---------------------------------------------------------------- gzip, bzip2, xz, zstd


def _compressed(kind: str, body: Body, reader: ReadInto, budget: Budget, say: Say) -> Iterator[Member]:
    """One decompressed file, named ``b""`` (shown as the outer name less its suffix), or a tar's members."""
    stream = _metered(kind, reader, budget)
    try:
        head = read_head(stream)
    except STREAM_ERRORS as exc:
        raise corrupt(exc) from None
    if sniff.sniff(head, len(head)) == sniff.TAR:  # app.tgz: its members, as app.tgz!path
        yield from _tar(replay(head, stream), budget, say)
        return
    admit(b"", budget, say)

    def reopen() -> ReadInto:
        again = body.reader()
        if again is None:
            raise ArchiveError("cannot be read twice")
        return Bounded(_metered(kind, again, budget), budget, STREAM_ERRORS, counts=False)

    can_reopen = body.data is not None or body.reopen is not None
    yield (
        b"",
        Bounded(replay(head, stream), budget, STREAM_ERRORS, counts=False),
        reopen if can_reopen else None,
    )


def _metered(kind: str, reader: ReadInto, budget: Budget) -> ReadInto:
    """Decompressed bytes, counted against the archive's budget and the stream's ratio."""
    source = RawFile(reader)
    inner = decompressed(kind, source, budget.limits)
    produced = 0
    ratio = budget.limits.ratio

    def read(view: memoryview) -> int:
        nonlocal produced
        if budget.bytes_left <= 0:
            raise ArchiveError(spent(budget))
        n = inner(view[: budget.bytes_left])
        produced += n
        budget.bytes_left -= n
        if produced > RATIO_FLOOR and produced > ratio * max(source.consumed, 1):
            raise ArchiveError(
                f"decompresses more than {ratio} times its size (archive-ratio): a compression bomb?"
            )
        return n

    return read


# ---------------------------------------------------------------- bounds


def admit(name: bytes, budget: Budget, say: Say) -> None:
    """Count one more member; :class:`ArchiveError` once the archive's bounds are spent."""
    if budget.members_left <= 0:
        raise ArchiveError(f"more than {budget.limits.members:,} entries (archive-members): the rest skipped")
    if budget.bytes_left <= 0:
        raise ArchiveError(spent(budget))
    budget.members_left -= 1
    if _outside(name):
        say(name, "member name points outside the archive (scanned here; nothing is ever extracted)")


def _outside(name: bytes) -> bool:
    parts = name.replace(b"\\", b"/").split(b"/")
    return name.startswith((b"/", b"\\")) or b".." in parts or (len(name) > 1 and name[1:2] == b":")


def spent(budget: Budget) -> str:
    return (
        f"{budget.limits.archive_bytes >> 20} MiB decompressed (archive-bytes): the rest of the archive"
        " is not scanned"
    )


class Bounded:
    """A member's reader that stops at the member bound, the archive's budget and (zip) the ratio.

    Reaching the member bound or the ratio ends this member only (:attr:`stopped` says why,
    for one warning); the next member is still read. What the format's library raises for
    damaged data (``errors``) becomes :class:`ArchiveError`; anything else is a bug, and rises.
    """

    __slots__ = ("_budget", "_compressed", "_counts", "_errors", "_read", "produced", "stopped")

    def __init__(
        self,
        read: ReadInto,
        budget: Budget,
        errors: Errors,
        *,
        compressed: int | None = None,
        counts: bool = True,
    ) -> None:
        self._read = read
        self._budget = budget
        self._errors = errors
        self._compressed = compressed  # a zip member's compressed size, for its ratio
        self._counts = counts  # False where a metered stream below already counts the budget
        self.produced = 0
        self.stopped: str | None = None

    def __call__(self, view: memoryview) -> int:
        if self.stopped is not None:
            return 0
        budget = self._budget
        limits = budget.limits
        allowed = min(len(view), limits.member_bytes - self.produced)
        if self._counts:
            allowed = min(allowed, budget.bytes_left)
        if allowed <= 0:
            if self.produced >= limits.member_bytes:
                self.stopped = (
                    f"larger than {limits.member_bytes >> 20} MiB (archive-member-bytes): the rest skipped"
                )
            return 0  # or the archive's budget is spent: the archive ends, with one warning
        try:
            n = self._read(view[:allowed])
        except self._errors as exc:
            raise corrupt(exc) from None
        self.produced += n
        if self._counts:
            budget.bytes_left -= n
        compressed = self._compressed
        if (
            compressed is not None
            and self.produced > RATIO_FLOOR
            and self.produced > limits.ratio * max(compressed, 1)
        ):
            self.stopped = (
                f"decompresses more than {limits.ratio} times its size (archive-ratio):"
                " a compression bomb? the rest of it is not scanned"
            )
        return n
