"""HTTP/1.1 connections with bounds: head size, header count, time to a whole request, connections.

uvicorn's httptools protocol (uvicorn 0.54) bounds none of these: httptools keeps growing a header
value until its line ends, a request may carry any number of headers, and its keep-alive timer is
cancelled by any byte, so a connection that sends nothing, or one byte every few seconds, stays open
for ever. This subclass counts what httptools parses and refuses early; the parsing stays
httptools' (llhttp's), and the fast path adds a few integer additions per read.

What counts as the head: every byte read while a request arrives that is not body content -- the
request line, header lines, chunk-size lines and trailers. Two counts enforce it. The pieces the
parser hands over (target, header names and values) are summed when the head is complete, before
the application is called, and again with the trailers; the sum is taken only when more than the
limit was read at all. And the raw bytes of a request still arriving, minus its body, are checked
after each read: that bounds the piece of a line httptools is still holding. When pipelined
requests share a read, the earlier ones' length as a client writes them is taken off the later
one's count (see ``_previous_request_end``).
"""

from __future__ import annotations

import asyncio
import http
import logging
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from partner_endpoint.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_head_bytes: int
    max_headers: int
    request_timeout: float
    keep_alive_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_head_bytes=settings.max_head_bytes,
            max_headers=settings.max_headers,
            request_timeout=settings.request_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
            max_connections=settings.max_connections,
        )


class BoundedConfig(uvicorn.Config):
    """uvicorn's configuration with :class:`ConnectionLimits`; it is pickled to each worker with them."""

    def __init__(self, app: str, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(
            app,
            http=BoundedHttpToolsProtocol,
            ws="none",  # no WebSocket routes: an upgrade request is an ordinary request
            timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]  # a float works
            # uvicorn answers 503 once this many requests are in progress; they can outnumber the
            # connections, as a request runs on after its client has gone.
            limit_concurrency=limits.max_connections + 1,
            **kwargs,
        )
        self.limits = limits


class RequestRefused(Exception):
    """Raised inside a parser callback to stop httptools; the protocol then answers ``status``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: BoundedConfig,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = config.limits
        self._refusal: RequestRefused | None = None
        # The clock: when the request arriving must be whole (None between requests). One timer per
        # connection, re-armed only when it fires early, so a request costs no timer of its own.
        self._due: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Running totals for the connection, and where the request arriving started in them.
        self._read_total = 0  # bytes read
        self._body_total = 0  # body bytes delivered by the parser
        self._read_before_chunk = 0
        self._request_read_start = 0
        self._request_body_start = 0

    # --- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(RequestRefused(503, "too many connections"))
            return
        self._request_begins(self._read_total)  # from the opening: a silent connection is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._read_before_chunk = self._read_total
        if self._due is None:
            self._request_begins(self._read_total)  # any byte starts it, even blank lines llhttp skips
        self._read_total += len(data)
        super().data_received(data)  # parser errors, ours included, end in send_400_response
        if self._due is not None and not self.transport.is_closing():
            unparsed = (self._read_total - self._request_read_start) - (
                self._body_total - self._request_body_start
            )
            if unparsed > self.limits.max_head_bytes:  # a head still arriving, or trailers
                self._refuse(RequestRefused(431, "request head too large"))

    # --- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._due is None:  # a pipelined request, beginning within this read
            self._request_begins(max(self._read_before_chunk, self._previous_request_end()))
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._check_head()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_total += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._check_head()  # again: trailers, which httptools adds to the headers
        self._due = None
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this when httptools stops with an error; a refusal of ours is one."""
        if self._refusal is not None:
            self._refuse(self._refusal)
        else:
            super().send_400_response(msg)

    # --- the bounds ---------------------------------------------------------------------------

    def _request_begins(self, read_start: int) -> None:
        self._request_read_start = read_start
        self._request_body_start = self._body_total
        self._due = self.loop.time() + self.limits.request_timeout
        if self._timer is None:
            self._timer = self.loop.call_at(self._due, self._clock_fired)

    def _check_head(self) -> None:
        """Raise a refusal when the head (with its trailers, at the end) is over a limit."""
        if len(self.headers) > self.limits.max_headers:
            self._refusal = RequestRefused(431, "too many headers")
            raise self._refusal
        limit = self.limits.max_head_bytes
        if self._read_total - self._request_read_start > limit and self._parsed_head() > limit:
            self._refusal = RequestRefused(431, "request head too large")
            raise self._refusal  # (when no more was read, the head cannot be larger: no sum to take)

    def _previous_request_end(self) -> int:
        """Where the request that just ended stopped, in bytes read: its start, its head as a client
        writes it (``Name: value`` lines), its body. Looser spacing or chunked framing make this too
        early, so the next request is charged those bytes: an over-count, never an under-count."""
        request_line = len(self.scope["method"]) + len("  HTTP/1.1\r\n")
        head = request_line + self._parsed_head() + 4 * len(self.headers) + 2
        return self._request_read_start + head + (self._body_total - self._request_body_start)

    def _parsed_head(self) -> int:
        return len(self.url) + sum(len(name) + len(value) for name, value in self.headers)

    def _clock_fired(self) -> None:
        self._timer = None
        if self._due is None or self.transport.is_closing():
            return  # between requests: the next one arms the clock again
        if self.loop.time() < self._due:  # a later request than the one it was set for
            self._timer = self.loop.call_at(self._due, self._clock_fired)
            return
        self._refuse(RequestRefused(408, "request not received in time"))

    def _refuse(self, refusal: RequestRefused) -> None:
        """Answer ``refusal`` and close. While an application is still answering (this request's, or
        an earlier pipelined one's) there is no room for an answer: close, and let the application
        see a disconnected client (its writes are dropped, as after a hang-up)."""
        self._due = None
        if self.transport.is_closing():
            return
        log.log(
            logging.INFO if refusal.status == 408 else logging.WARNING,  # 408: idle browsers' preconnects too
            "request refused",
            extra={"fields": {"status": refusal.status, "reason": refusal.reason, "client": self.client}},
        )
        if self.cycle is None or self.cycle.response_complete:
            body = refusal.reason.encode()
            head = [
                f"HTTP/1.1 {refusal.status} {http.HTTPStatus(refusal.status).phrase}\r\n".encode(),
                *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(body),
                b"retry-after: 1\r\n" if refusal.status == 503 else b"",
                b"connection: close\r\n\r\n",
            ]
            self.transport.write(b"".join(head) + body)
        else:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()
