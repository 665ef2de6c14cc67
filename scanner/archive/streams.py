"""Readers over an archive's bytes: file-like views for zipfile and tarfile, and decompression.

Everything streams through ``readinto``-style readers in bounded pieces: no member is
ever held whole unless it must be opened again (and fits :attr:`Limits.in_memory`), and
nothing touches the disk.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, cast

from scanner.archive import sniff
from scanner.archive.limits import Limits
from scanner.engine import ReadInto
from scanner.engine.engine import HEAD

if TYPE_CHECKING:
    from typing_extensions import Buffer  # the type checker's only (collections.abc.Buffer from 3.12)

Decompressor = Any
"""zlib's, bz2's or lzma's decompressor object (their types share no base class)."""

PIECE = 1 << 16
"""Compressed bytes handed to a decompressor at a time."""
MAX_DIRECTORY = 32 << 20
"""Largest single read from a zip: its central directory (50,000 entries, the ``archive-members``
default, with long names take about 10 MB; a fat jar's 30,000 about 3 MB)."""
XZ_DECODER_MEMORY = 4 << 20
"""What liblzma's decoder needs besides its dictionary: ``xz -9`` declares a 64 MiB dictionary, the
default ``archive-window``, and needs 65 MiB to decode."""
MAX_READ = 2 << 20
"""Largest read tarfile may ask for between members (a header that claims gigabytes would otherwise be
gathered in memory), and the piece :func:`read_head` reads in."""


class ArchiveError(Exception):
    """An archive that cannot be read on (truncated, corrupt, over a bound); the message says why."""


class RawFile(io.RawIOBase):
    """A readable, non-seekable file over a reader; counts what it gave out."""

    def __init__(self, readinto: ReadInto) -> None:
        self._readinto = readinto
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        n = self._readinto(memoryview(buffer).cast("B"))
        self.consumed += n
        return n


class Forward(RawFile):
    """A stream that seeks forward only (by reading on), for tarfile over a stream.

    Reads outside a member's data (headers: ``metadata``) are bounded, so a header that
    claims gigabytes cannot make tarfile gather them in memory.
    """

    def __init__(self, readinto: ReadInto) -> None:
        super().__init__(readinto)
        self.position = 0
        self.in_member = False
        self.metadata = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.position + offset
        if whence == io.SEEK_END or target < self.position:
            raise ArchiveError("the archive asks to seek backwards in a stream")
        scratch = bytearray(min(PIECE, target - self.position) or 1)
        while self.position < target:
            n = self.readinto(memoryview(scratch)[: target - self.position])
            if not n:
                break
        return self.position

    def read(self, size: int = -1) -> bytes:
        """Exactly ``size`` bytes, fewer only at the end: tarfile takes a short read for a truncated
        archive, and a decompressor gives one wherever a piece of its input runs out."""
        if size < 0 or size > MAX_READ:
            raise ArchiveError(f"a header larger than {MAX_READ >> 20} MiB")
        if not self.in_member:
            self.metadata += size
            if self.metadata > MAX_READ:
                raise ArchiveError(f"headers larger than {MAX_READ >> 20} MiB")
        return read_head(self.readinto, size)

    def readinto(self, buffer: Buffer) -> int:
        n = super().readinto(buffer)
        self.position += n
        return n


class RandomAccess(io.RawIOBase):
    """A seekable file over an input that can be read at any offset (an in-memory or on-disk archive)."""

    def __init__(self, pread: Callable[[memoryview, int], int], size: int) -> None:
        self._pread = pread
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int = -1) -> bytes:
        """At most what is left of the archive: a size read from the archive (zipfile reads its central
        directory in one go, as large as the end record says) allocates no more than the file holds,
        and never more than :data:`MAX_DIRECTORY`."""
        left = max(0, self._size - self._position)
        size = left if size < 0 else min(size, left)
        if size > MAX_DIRECTORY:
            limit = MAX_DIRECTORY >> 20
            raise ArchiveError(f"a read larger than {limit} MiB (a central directory that large?)")
        return read_head(self.readinto, size)

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = self._pread(view[: max(0, self._size - self._position)], self._position)
        self._position += n
        return n


def memory_pread(data: bytes | bytearray) -> Callable[[memoryview, int], int]:
    def pread(view: memoryview, offset: int) -> int:
        n = max(0, min(len(view), len(data) - offset))
        view[:n] = data[offset : offset + n]
        return n

    return pread


def decompressed(kind: str, source: RawFile, limits: Limits) -> ReadInto:
    """A reader of the decompressed bytes of a gzip, bzip2, xz or zstd stream.

    Concatenated streams (``cat a.gz b.gz``) are read on; other bytes after the end are
    left to the raw scan, which already read them (a key appended to a ``.gz`` is found
    there). A stream cut short raises :class:`ArchiveError`.
    """
    if kind == sniff.ZSTD:
        return _zstd(source, limits)
    return _Decompressor(kind, source, limits)


def _new(kind: str, limits: Limits) -> Decompressor:
    if kind == sniff.GZIP:
        return zlib.decompressobj(wbits=31)
    if kind == sniff.BZIP2:
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=limits.window + XZ_DECODER_MEMORY)


_MAGIC = {sniff.GZIP: b"\x1f\x8b", sniff.BZIP2: b"BZh", sniff.XZ: b"\xfd7zXZ\x00"}


class _Decompressor:
    """zlib, bz2 and lzma behind one ``readinto``, with output bounded by each call's view."""

    def __init__(self, kind: str, source: RawFile, limits: Limits) -> None:
        self._kind = kind
        self._source = source
        self._limits = limits
        self._state = _new(kind, limits)
        self._pending = b""  # compressed bytes read but not yet handed over
        self._done = False

    def __call__(self, view: memoryview) -> int:
        while not self._done:
            out = self._step(len(view))
            if out:
                view[: len(out)] = out
                return len(out)
        return 0

    def _step(self, size: int) -> bytes:
        state = self._state
        if state.eof:
            rest = state.unused_data + self._pending
            magic = _MAGIC[self._kind]
            if len(rest) < len(magic):
                rest += self._source.read(PIECE) or b""
            if not rest.startswith(magic):
                self._done = True  # trailing bytes, if any: the raw scan has read them
                return b""
            self._state = state = _new(self._kind, self._limits)
            self._pending = rest
        if self._kind == sniff.GZIP:
            data = state.unconsumed_tail or self._take()
        else:
            data = self._take() if state.needs_input else b""
        try:
            out: bytes = state.decompress(data, size)
            return out
        except lzma.LZMAError as exc:
            if "memory" in str(exc).lower():  # liblzma's "Memory usage limit exceeded"
                window = self._limits.window >> 20
                raise ArchiveError(
                    f"its dictionary is larger than {window} MiB (archive-window): not opened"
                ) from None
            raise ArchiveError(f"corrupt {self._kind} data ({exc})") from None
        except (zlib.error, OSError, EOFError) as exc:
            raise ArchiveError(f"corrupt {self._kind} data ({exc})") from None

    def _take(self) -> bytes:
        data, self._pending = self._pending, b""
        data = data or self._source.read(PIECE) or b""
        if not data:
            raise ArchiveError(f"{self._kind} stream cut short")
        return data


def _zstd(source: RawFile, limits: Limits) -> ReadInto:
    import zstandard  # deferred: imported when a zstd file turns up

    reader = zstandard.ZstdDecompressor(max_window_size=limits.window).stream_reader(
        cast(IO[bytes], source),
        read_size=PIECE,
        read_across_frames=True,  # it reads through .read()
    )

    def readinto(view: memoryview) -> int:
        try:
            return reader.readinto(view)
        except zstandard.ZstdError as exc:
            raise ArchiveError(f"corrupt zstd data ({exc})") from None

    return readinto


def replay(head: bytes, readinto: ReadInto) -> ReadInto:
    """A reader that gives ``head`` (already read) before the rest of ``readinto``."""
    pos = 0

    def read(view: memoryview) -> int:
        nonlocal pos
        if pos < len(head):
            n = min(len(view), len(head) - pos)
            view[:n] = head[pos : pos + n]
            pos += n
            return n
        return readinto(view)

    return read


def read_head(readinto: ReadInto, size: int = HEAD) -> bytes:
    """Up to ``size`` first bytes of a reader (fewer only at its end).

    Read in pieces of at most :data:`MAX_READ`: the reader may be a zip member, whose reads go
    to its archive in the size asked (a nested zip of megabytes is read into memory this way).
    """
    buf = bytearray(size)
    view = memoryview(buf)
    n = 0
    while n < size:
        got = readinto(view[n : n + MAX_READ])
        if not got:
            break
        n += got
    return bytes(buf[:n])
