"""Line and column of byte offsets in an input read one window at a time.

A line ends at a ``\\n`` byte. A column counts the Unicode code points of the
line before the offset, plus one; bytes that are not UTF-8 count as
``bytes.decode(errors="replace")`` counts them (one U+FFFD per maximal invalid
sequence). The engine's single pass (lines counted as its window slides) and
its second pass over a re-read input both place matches through this module,
so the two cannot disagree.

Pure: no I/O. The caller shows the counter the bytes that leave the window.
"""

from __future__ import annotations

import codecs


def _utf8() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")("replace")


class LineCounter:
    """Where a window starts: the lines and code points of the input before it."""

    __slots__ = ("_decoder", "chars", "lines")

    def __init__(self) -> None:
        self.lines = 0
        """Newlines before the window."""
        self.chars = 0
        """Code points from the last of those newlines to the window."""
        self._decoder = _utf8()  # holds a character cut in two by the window's start

    def passed(self, data: bytes | bytearray) -> None:
        """``data``, the next bytes of the input, left the front of the window."""
        last = data.rfind(b"\n")
        if last < 0:  # rfind is a memchr; count is only worth it when a newline is there
            self.chars += len(self._decoder.decode(data))
            return
        self.lines += data.count(b"\n")
        self._decoder.reset()
        self.chars = len(self._decoder.decode(data[last + 1 :]))

    def chars_to(self, head: bytes | bytearray) -> int:
        """Code points from the last newline before the window to the end of ``head``.

        ``head`` is the window's start, which holds no newline.
        """
        probe = _utf8()
        probe.setstate(self._decoder.getstate())
        return self.chars + len(probe.decode(head, final=True))


class Window:
    """Places positions of one window; the counter says where the window starts.

    Positions are the first bytes of tokens (ASCII). They may come in any order;
    in order (the usual case) each one counts on from the previous one, so many
    tokens on one long line cost one pass over it, not one each.
    """

    __slots__ = ("_buf", "_counted", "_counter", "_newlines", "_previous")

    def __init__(self, buf: bytes | bytearray, counter: LineCounter) -> None:
        self._buf = buf
        self._counter = counter
        self._counted = 0  # newlines in buf[:_counted] ...
        self._newlines = 0  # ... are this many
        self._previous = (-1, 0, 0)  # line start, position and column of the last position placed

    def locate(self, start: int, line_start: int) -> tuple[int, int]:
        """1-based (line, column) of ``buf[start]``.

        ``line_start`` is the index just past the last newline before ``start``
        (0 when there is none in the window); the caller has it already.
        """
        buf = self._buf
        if start < self._counted:
            self._counted = self._newlines = 0
        self._newlines += buf.count(b"\n", self._counted, start)
        self._counted = start
        line = self._counter.lines + self._newlines + 1
        previous_line_start, previous, previous_column = self._previous
        if previous_line_start == line_start and previous <= start:
            column = previous_column + len(buf[previous:start].decode("utf-8", "replace"))
        elif line_start > 0:
            column = len(buf[line_start:start].decode("utf-8", "replace")) + 1
        else:  # the line began before the window
            column = self._counter.chars_to(buf[:start]) + 1
        self._previous = (line_start, start, column)
        return line, column
