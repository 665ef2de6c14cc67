"""Request bodies read under a byte limit: what a client sends is never buffered beyond it."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    """A body past its limit; ``str()`` is the sentence a 413 answers with."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body exceeds the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without buffering them."""
    declared = request.headers.get("content-length", "")
    # isascii: headers are decoded as latin-1, and "\xb2" (superscript two) is a digit to isdigit() only.
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
