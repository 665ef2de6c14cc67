"""Bytes in, matches out: the detection core, which knows nothing of files or git.

Input arrives through a ``readinto`` callable, so a file, a pipe or a git blob
stream all look the same. Inputs larger than one chunk are scanned in chunks
that overlap by one token length less a byte (more with base64 on: the text
around an encoded token), so a token cut by a chunk boundary is still found,
exactly once, and memory stays bounded. Tokens in base64, in UTF-16 or UTF-32
text and in hex are found through their prefixes' images in that form
(:mod:`~scanner.engine.encoded`, :mod:`~scanner.engine.wide`, :mod:`~scanner.engine.hexed`):
literals matched beside the plain patterns, so input without them costs nothing more.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Sequence

import rules
from rules import TokenFormat
from scanner.engine import encoded, hexed, wide
from scanner.engine.location import LineCounter, Window
from scanner.engine.match import Match
from scanner.engine.patterns import compile_matcher

ReadInto = Callable[[memoryview], int]
"""Fills the view with the next bytes of the input, returns how many (0 at the end)."""

DEFAULT_CHUNK = 1 << 20
LINE_CONTEXT = 1 << 16
"""Bytes of a token's line kept from the previous and the next chunk, for inline markers."""
HEAD = 512
"""Bytes kept from the start of an input larger than a chunk: all that the archive sniffer and the
expander read to recognise an archive (a tar's magic ends at byte 262)."""

Token = tuple[int, int, bytes, tuple[str, ...]]
"""(offset, format index, token, layers of encoding around it) inside decoded bytes."""
Image = encoded.Image | wide.Image | hexed.Image

DECODERS = frozenset({"base64", "utf16", "hex"})
"""What the engine decodes by default: base64, UTF-16 and UTF-32 text, hex. ``frozenset()``: tokens as
written only (``--plain``)."""
_REACH = {
    "base64": (encoded.REACH_BEFORE, encoded.REACH_AFTER),
    "utf16": (wide.REACH_BEFORE, wide.REACH_AFTER),
    "hex": (hexed.REACH_BEFORE, hexed.REACH_AFTER),
}
"""Bytes a decoder may read before and after the end of an image's match."""


class Engine:
    """Scans inputs for checksum-valid credentials. One engine per thread."""

    def __init__(
        self,
        formats: Sequence[TokenFormat] = rules.FORMATS,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        backend: str | None = None,
        decoders: frozenset[str] = DECODERS,
    ) -> None:
        self.formats = tuple(formats)
        self.decoders = frozenset(decoders)
        """What is decoded, of :data:`DECODERS`."""
        self._chunk_size = chunk_size
        self._images: list[Image] = []
        if "base64" in decoders:
            self._images += encoded.images(self.formats, utf16="utf16" in decoders)
        if "utf16" in decoders:
            self._images += wide.images(self.formats)
        if "hex" in decoders:
            self._images += hexed.images(self.formats)
        self._plain = len(self.formats)
        patterns = [fmt.pattern for fmt in self.formats] + [image.pattern for image in self._images]
        self._matcher = compile_matcher(patterns, backend)
        self._lengths = [fmt.length for fmt in self.formats]
        self._prefix_lengths = [len(fmt.prefix) for fmt in self.formats]
        # A window keeps enough of the previous one for a token cut by its start, and for the
        # encoded text around an image candidate (decoded in the window where all of it is).
        reaches = [_REACH[name] for name in sorted(self.decoders)]
        self._reach_after = max((after for _, after in reaches), default=0)
        reach = max((before + after for before, after in reaches), default=0)
        self._overlap = max(max(self._lengths) - 1, reach)
        self._chunk = max(chunk_size, self._overlap + 1)
        self._buf = bytearray(self._overlap + self._chunk)
        self._view = memoryview(self._buf)
        self._first = self._view[: self._chunk]
        """Where every input's first chunk is read: one slice made once, not per file."""
        self._head = b""

    @property
    def backend(self) -> str:
        return self._matcher.name

    def __reduce__(self) -> tuple[Callable[..., Engine], tuple[object, ...]]:  # rebuilt in a spawned worker
        return (_rebuild, (self.formats, self._chunk_size, self.backend, self.decoders))

    def head(self, size: int) -> bytes | bytearray:
        """The first bytes (at least :data:`HEAD`, or all) of the input just scanned, ``size`` bytes long.

        Valid until the next scan; an expander recognises archives by them.
        """
        return self._buf if size < self._chunk else self._head

    def whole(self, size: int) -> bytes | None:
        """A copy of the input just scanned when it fit in one chunk (so it need not be read again)."""
        return bytes(self._view[:size]) if size < self._chunk else None

    def scan(
        self,
        readinto: ReadInto,
        *,
        short_read_is_end: bool = False,
        reopen: Callable[[], ReadInto] | None = None,
    ) -> tuple[list[Match], int]:
        """Scan one input to its end; return its matches and its size in bytes.

        ``short_read_is_end`` spares a read per input where a short read can only
        mean the end (regular files); pipes and sockets need the default.
        ``reopen`` (for inputs that can be read again) spares counting lines in
        every chunk of a large input: lines are counted in a second pass, only
        when a token turns up beyond the first chunk, which is rare.
        """
        view, chunk = self._view, self._chunk
        n = readinto(self._first) if short_read_is_end else _fill(readinto, self._first)
        if n < chunk:  # the common case: the whole input fits in one chunk
            if not n:
                return [], 0
            found = self._matcher.candidates(view[:n])
            return (self._matches(found, n, 0, LineCounter()) if found else []), n
        self._head = bytes(view[:HEAD])
        matches, total = self._scan_chunks(readinto, n, count_lines=reopen is None)
        if reopen is not None and any(m.offset >= chunk - self._overlap for m in matches):
            matches = self._relocate(matches, reopen())
        return matches, total

    def _scan_chunks(self, readinto: ReadInto, n: int, *, count_lines: bool) -> tuple[list[Match], int]:
        """Scan an input larger than one chunk, whose first ``n`` bytes are read, window by window."""
        buf, view, overlap, chunk = self._buf, self._view, self._overlap, self._chunk
        matches: list[Match] = []
        total = n
        base = 0  # absolute offset of view[0]
        keep = 0  # bytes at the front carried over from the previous chunk
        counter = LineCounter()  # where view[0] is (left at the start unless ``count_lines``)
        # A token's line (for inline markers) may run into the previous or the next chunk:
        # each match's line_text takes up to LINE_CONTEXT bytes more on either side.
        line_head = b""  # the current line's bytes just before view[0] (at most LINE_CONTEXT)
        open_lines: list[int] = []  # matches whose line goes on past the data read so far
        while True:
            end = keep + n
            last = n < chunk
            if open_lines:
                self._extend_lines(matches, open_lines, keep, end)
                open_lines = []
            found = [c for c in self._matcher.candidates(view[:end]) if self._fresh(c, keep, end, last)]
            if found:
                new = self._matches(found, end, base, counter, line_head)
                if not last:  # more input may follow: lines not ended here go on in it
                    open_lines = [
                        len(matches) + j
                        for j, m in enumerate(new)
                        if buf.find(b"\n", m.offset - base + m.span, end) < 0
                    ]
                matches += new
            if last:
                break
            # Slide: the last `overlap` bytes become the front of the next buffer.
            dropped = end - overlap
            floor = max(0, dropped - LINE_CONTEXT)
            line_head = bytes(buf[buf.rfind(b"\n", floor, dropped) + 1 or floor : dropped])
            if count_lines:
                counter.passed(bytes(buf[:dropped]))
            buf[:overlap] = buf[dropped:end]
            base += dropped
            keep = overlap
            n = _fill(readinto, view[keep : keep + chunk])
            total += n
            if not n and not self._images:  # nothing is left to place in the carried bytes
                break
        return matches, total

    def _fresh(self, candidate: tuple[int, int], keep: int, end: int, last: bool) -> bool:
        """Whether this window places the candidate: the one where it is new, or where all
        of the base64 around an image candidate has arrived (then no later window sees it new)."""
        index, stop = candidate
        if index < self._plain:
            return stop > keep
        reach = stop + self._reach_after
        return reach > keep and (last or reach <= end)

    def _extend_lines(self, matches: list[Match], open_lines: list[int], keep: int, end: int) -> None:
        """Give the matches whose line ran past the last chunk the rest of it, from this one."""
        stop = min(end, keep + LINE_CONTEXT)
        newline = self._buf.find(b"\n", keep, stop)
        tail = bytes(self._view[keep : stop if newline < 0 else newline])
        longer: dict[int, bytes] = {}  # matches on one line share one line_text
        for i in open_lines:
            text = matches[i].line_text
            if id(text) not in longer:
                longer[id(text)] = (text + tail).rstrip(b"\r")
            matches[i] = dataclasses.replace(matches[i], line_text=longer[id(text)])

    def _relocate(self, matches: list[Match], readinto: ReadInto) -> list[Match]:
        """Second pass over a re-read input: exact line and column for every match (those in UTF-16
        or UTF-32 text counted in that text, each encoding and alignment counted on its own)."""
        buf, view = self._buf, self._view
        pending = collections.deque(sorted(matches, key=lambda m: m.offset))
        out: list[Match] = []
        base = 0
        counter = LineCounter()
        texts = {
            (m.encoding, m.offset % wide.UNITS[m.encoding]): wide.Counter(
                m.encoding, m.offset % wide.UNITS[m.encoding]
            )
            for m in matches
            if m.encoding in wide.UNITS
        }
        while pending:
            n = _fill(readinto, view[: self._chunk])
            if not n:
                break
            window = Window(buf, counter)
            done = {key: 0 for key in texts}  # bytes of this window each text counter has passed
            while pending and pending[0].offset < base + n:
                m = pending.popleft()
                start = m.offset - base
                if m.encoding in wide.UNITS:
                    key = (m.encoding, m.offset % wide.UNITS[m.encoding])
                    texts[key].passed(bytes(view[done[key] : start]))
                    done[key] = start
                    line, column = texts[key].lines + 1, texts[key].chars + 1
                else:
                    line, column = window.locate(start, buf.rfind(b"\n", 0, start) + 1)
                out.append(dataclasses.replace(m, line=line, column=column))
            counter.passed(bytes(view[:n]))
            for key, text in texts.items():
                text.passed(bytes(view[done[key] : n]))
            base += n
        return out + list(pending)

    def _valid(self, index: int, token: bytes) -> bool:
        """Whether a candidate of plain format ``index`` has the right checksum."""
        return rules.is_valid_body(token[self._prefix_lengths[index] :])

    def _matches(
        self,
        found: list[tuple[int, int]],
        end: int,
        base: int,
        counter: LineCounter,
        line_head: bytes = b"",
    ) -> list[Match]:
        """The checksum-valid candidates of ``buf[:end]`` (``base`` bytes into the input), placed."""
        out: list[Match] = []
        buf, view = self._buf, self._view
        window = Window(buf, counter)
        placer = wide.Placer(view[:end])
        texts: dict[tuple[int, int], bytes] = {}  # one line_text per line, shared by its tokens
        seen: set[tuple[int, bytes]] = set()  # an encoded token that several images matched
        for index, stop in sorted(set(found), key=lambda c: c[1]):
            tokens: list[tuple[int, int, bytes, str | None]]
            image = None if index < self._plain else self._images[index - self._plain]
            if image is None:
                start = stop - self._lengths[index]
                token = bytes(view[start:stop])
                if not self._valid(index, token):
                    continue
                tokens = [(start, index, token, None)]
            else:
                tokens = [
                    (start, i, token, "/".join(layers))
                    for start, i, token, layers in self._decoded(buf, stop, end, image)
                    if (start, token) not in seen
                ]
                seen.update((start, token) for start, _, token, _ in tokens)
            for start, i, token, encoding in tokens:
                if isinstance(image, wide.Image):  # in the decoded text (again later, if not whole here)
                    line, column, text = placer.place(start, image)
                    line += counter.lines
                else:
                    line, column, text = self._place(window, texts, start, end, base, line_head)
                out.append(
                    Match(
                        type=self.formats[i].name,
                        offset=base + start,
                        line=line,
                        column=column,
                        secret=token,
                        line_text=text,
                        encoding=encoding,
                    )
                )
        return wide.one_byte_order(out, _reading) if "utf16" in self.decoders else out

    def _place(
        self,
        window: Window,
        texts: dict[tuple[int, int], bytes],
        start: int,
        end: int,
        base: int,
        line_head: bytes,
    ) -> tuple[int, int, bytes]:
        """Line, column and line text of the token at ``start`` of the window (``texts``: the line texts
        made so far, shared by the tokens of one line)."""
        buf, view = self._buf, self._view
        line_start = buf.rfind(b"\n", 0, start) + 1
        line, column = window.locate(start, line_start)
        line_end = buf.find(b"\n", start, end)
        line_end = end if line_end < 0 else line_end
        text = texts.get((line_start, line_end))
        if text is None:
            text = bytes(view[line_start:line_end]).rstrip(b"\r")
            if line_start == 0 and base:
                text = line_head + text
            texts[line_start, line_end] = text
        return line, column, text

    def _decoded(self, data: bytes | bytearray, stop: int, end: int, image: Image) -> list[Token]:
        """The tokens in the encoded text around an image candidate: (position in ``data`` of the
        encoded token, format index, token, layers of encoding, outermost first)."""
        if isinstance(image, wide.Image):
            fmt = self.formats[image.format_index]
            found = wide.token_at(data, stop, end, image, fmt.length)
            if found is None or not self._valid(image.format_index, found[1]):
                return []
            return [(found[0], image.format_index, found[1], (image.encoding,))]
        if isinstance(image, hexed.Image):
            fmt = self.formats[image.format_index]
            start, raw = hexed.decode_at(data, stop, end, image, fmt.length)
            token = raw[: fmt.length]
            if len(token) < fmt.length or not self._valid(image.format_index, token):
                return []
            return [(start, image.format_index, token, ("hex",))]
        decoded = encoded.decode_at(data, stop, end, image)
        if decoded is None:
            return []
        name = "base64url" if decoded.url_safe else "base64"
        return [
            (decoded.position_of(offset), index, token, (name, *layers))
            for offset, index, token, layers in self._tokens(decoded.data, image.depth - 1)
        ]

    def _tokens(self, data: bytes, layers: int) -> list[Token]:
        """The tokens in decoded bytes, through at most ``layers`` more layers of base64."""
        out: list[Token] = []
        for index, stop in self._matcher.candidates(memoryview(data)):
            if index < self._plain:
                start = stop - self._lengths[index]
                token = data[start:stop]
                if start >= 0 and self._valid(index, token):
                    out.append((start, index, token, ()))
            else:
                image = self._images[index - self._plain]
                if isinstance(image, wide.Image) or (
                    isinstance(image, encoded.Image) and image.depth <= layers
                ):
                    out += self._decoded(data, stop, len(data), image)  # UTF-16 inside base64, or base64
        return wide.one_byte_order(out, _inner_reading, aligned=False)  # decoded from mid-stream


def _reading(match: Match) -> tuple[int, bytes, str | None]:
    return match.offset, match.secret, match.encoding


def _inner_reading(token: Token) -> tuple[int, bytes, str | None]:
    offset, _, secret, layers = token
    return offset, secret, layers[0] if layers else None


def bytes_reader(data: bytes) -> ReadInto:
    """``readinto`` over an in-memory input, from its first byte."""
    pos = 0

    def readinto(view: memoryview) -> int:
        nonlocal pos
        n = min(len(view), len(data) - pos)
        view[:n] = data[pos : pos + n]
        pos += n
        return n

    return readinto


def _fill(readinto: ReadInto, view: memoryview) -> int:
    """Read until ``view`` is full or the input ends (pipes return short reads)."""
    n = readinto(view)
    if n == 0 or n == len(view):
        return n
    while n < len(view):
        got = readinto(view[n:])
        if not got:
            break
        n += got
    return n


def _rebuild(
    formats: tuple[TokenFormat, ...], chunk_size: int, backend: str, decoders: frozenset[str]
) -> Engine:
    return Engine(formats, chunk_size=chunk_size, backend=backend, decoders=decoders)
