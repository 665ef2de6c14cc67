"""The file views zipfile and tarfile read archives through: sizes they are asked for come from the
archive itself, so they are bounded by what the archive holds, not by what it claims."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.archive.streams import MAX_DIRECTORY, ArchiveError, Forward, RandomAccess, memory_pread


def test_a_read_is_never_larger_than_what_is_left() -> None:
    data = bytes(range(256)) * 4
    file = RandomAccess(memory_pread(data), len(data))
    file.seek(1000)
    assert file.read(1 << 40) == data[1000:]  # claimed a terabyte: got the 24 bytes there are
    assert file.read(10) == b""


def test_a_claimed_directory_larger_than_the_bound_is_refused_before_any_allocation() -> None:
    asked: list[int] = []

    def pread(view: memoryview, offset: int) -> int:
        asked.append(len(view))
        return len(view)

    file = RandomAccess(pread, 1 << 40)  # a sparse terabyte on disk, say
    with pytest.raises(ArchiveError, match="central directory"):
        file.read(MAX_DIRECTORY + 1)
    assert asked == []
    assert len(file.read(3 << 20)) == 3 << 20  # a directory of megabytes is fine


@given(st.binary(max_size=5000), st.lists(st.integers(min_value=0, max_value=700), max_size=30))
def test_forward_reads_are_whole_whatever_the_pieces(data: bytes, sizes: list[int]) -> None:
    """A decompressor hands out short pieces; tarfile asks for whole blocks and takes less for the end."""
    source = io.BytesIO(data)
    pieces = iter([1, 7, 512, 3, 64] * 2000)

    def readinto(view: memoryview) -> int:
        return source.readinto(view[: next(pieces)])

    stream = Forward(readinto)
    expected = io.BytesIO(data)
    for size in sizes:
        assert stream.read(size) == expected.read(size)
