"""Line and column placement (scanner.engine.location) against an independent oracle.

The oracle decodes the whole input before the offset and splits the text on
"\\n": the line is the number of pieces, the column the length of the last one
plus one. The module never decodes more than one line, counts newline bytes and
carries a decoder's state across windows, so agreeing with the oracle on any
bytes, any window cuts (inside a UTF-8 character too) and any order of positions
is what it promises.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.engine.location import LineCounter, Window


def oracle(data: bytes, offset: int) -> tuple[int, int]:
    pieces = data[:offset].decode("utf-8", "replace").split("\n")
    return len(pieces), len(pieces[-1]) + 1


def place(window_data: bytes, counter: LineCounter, starts: list[int]) -> list[tuple[int, int]]:
    window = Window(bytearray(window_data), counter)
    return [window.locate(s, window_data.rfind(b"\n", 0, s) + 1) for s in starts]


PIECES = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\n", b"\r\n", b"\xc3", b"\xe2\x82", b"\xf0\x9f", "é".encode(), "😀".encode(), b"s"]),
)
DATA = st.lists(PIECES, max_size=25).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=DATA, picks=st.lists(st.integers(0, 10**6), max_size=12), cuts=st.lists(st.integers(0, 10**6)))
def test_positions_across_windows_match_the_oracle(data: bytes, picks: list[int], cuts: list[int]) -> None:
    """Windows cut anywhere; in each, positions at ASCII bytes, in the order hypothesis chose."""
    ascii_offsets = [i for i, byte in enumerate(data) if byte < 0x80]
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    counter = LineCounter()
    chosen = [ascii_offsets[p % len(ascii_offsets)] for p in picks] if ascii_offsets else []
    for lo, hi in itertools.pairwise(edges):
        mine = [offset for offset in chosen if lo <= offset < hi]
        got = place(data[lo:hi], counter, [offset - lo for offset in mine])
        assert got == [oracle(data, offset) for offset in mine]
        counter.passed(data[lo:hi])


@settings(max_examples=200, deadline=None)
@given(data=DATA, split=st.integers(0, 10**6))
def test_counter_matches_the_oracle_at_every_window_start(data: bytes, split: int) -> None:
    """After ``passed``, the counter holds the line and the code points before the window."""
    cut = split % (len(data) + 1)
    counter = LineCounter()
    counter.passed(data[: cut // 2])
    counter.passed(data[cut // 2 : cut])
    line, column = oracle(data + b"s", cut)  # the column a token starting at `cut` would have
    assert counter.lines + 1 == line
    assert counter.chars_to(b"") + 1 == column


def test_many_positions_on_one_line_count_on() -> None:
    line = "é".encode() * 5 + b"spk_a spk_b\xff spk_c"
    starts = [i for i in range(len(line)) if line.startswith(b"spk_", i)]
    assert place(line, LineCounter(), starts) == [(1, 6), (1, 12), (1, 19)]
    assert place(b"x\n" + line, LineCounter(), [s + 2 for s in starts]) == [(2, 6), (2, 12), (2, 19)]
