"""What an input is, from its first bytes: the magic numbers of the formats we open.

Called for every input, so it costs almost nothing when the answer is "plain": one
byte looked up, one five-byte comparison.
"""

from __future__ import annotations

ZIP, TAR, GZIP, BZIP2, XZ, ZSTD = "zip", "tar", "gzip", "bzip2", "xz", "zstd"

_STARTS = {
    ord("P"): ((b"PK\x03\x04", ZIP), (b"PK\x05\x06", ZIP)),
    0x1F: ((b"\x1f\x8b\x08", GZIP),),
    ord("B"): ((b"BZh", BZIP2),),
    0xFD: ((b"\xfd7zXZ\x00", XZ),),
    0x28: ((b"\x28\xb5\x2f\xfd", ZSTD),),
}
_TAR_MAGIC = slice(257, 262)


def sniff(head: bytes | bytearray | memoryview, size: int) -> str | None:
    """The format of an input whose first bytes are ``head[:size]``, or None for anything else."""
    if size < 4:
        return None
    starts = _STARTS.get(head[0])
    if starts is not None:
        for magic, kind in starts:
            if len(magic) <= size and head[: len(magic)] == magic:
                if kind == BZIP2 and not (0x31 <= head[3] <= 0x39):  # "BZh" then the block size 1-9
                    return None
                return kind
    if size >= 262 and head[_TAR_MAGIC] == b"ustar":
        return TAR
    return None
